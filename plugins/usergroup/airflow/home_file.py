"""The Airflow home's connections file, `$AIRFLOW_HOME/connections.json`: plain Python, no Airflow import.

One JSON object, a connection id to its value (Airflow's JSON form, as an AIRFLOW_CONN_* variable takes it).
Written atomically (a temporary file beside it, renamed), mode 0600: it may hold passwords. Read by
usergroup.airflow.home_connections.HomeConnections (the home's secrets backend) and by scripts/homeconn.py.
"""

import json
import os
import re
import tempfile
from pathlib import Path

FILE_NAME = "connections.json"
BACKEND = "usergroup.airflow.home_connections.HomeConnections"


class HomeConnectionsError(ValueError):
    """The connections file cannot be read: the message names the file."""


def connections_path(home: str | os.PathLike | None = None) -> Path:
    home = home or os.environ.get("AIRFLOW_HOME") or Path.home() / "airflow"
    return Path(home).expanduser() / FILE_NAME


def read_connections(path: Path) -> dict[str, str]:
    """The file's connections ({} if there is no file); a file that is not a JSON object raises, naming it."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise HomeConnectionsError(f"cannot read the Airflow home's connections file {path}: {e}") from e
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise HomeConnectionsError(f"the Airflow home's connections file {path} is not JSON: {e}") from e
    if not isinstance(data, dict):
        raise HomeConnectionsError(f"the Airflow home's connections file {path} is not a JSON object")
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in data.items()}


def write_connections(path: Path, connections: dict[str, str]) -> None:
    """Replace the file atomically, mode 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{FILE_NAME}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(connections, f, indent=2, sort_keys=True)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def set_connection(path: Path, conn_id: str, value: str, *, only_if_missing: bool = False) -> bool:
    """Set one connection; with only_if_missing, keep one already there. True if the file changed."""
    connections = read_connections(path)
    if only_if_missing and conn_id in connections:
        return False
    connections[conn_id] = value
    write_connections(path, connections)
    return True


def configure_backend(cfg: Path) -> None:
    """Name the home's secrets backend in its airflow.cfg (`[secrets] backend`), keeping the rest of the file."""
    set_option(cfg, "secrets", "backend", BACKEND)


def set_option(cfg: Path, section: str, key: str, value: str) -> None:
    """Set `[section] key = value` in an airflow.cfg, keeping the rest of the file."""
    text = cfg.read_text() if cfg.exists() else ""
    line = f"{key} = {value}"
    match = re.search(rf"^\[{re.escape(section)}\]\s*$", text, flags=re.MULTILINE)
    if match is None:
        text = f"{text.rstrip()}\n\n[{section}]\n{line}\n".lstrip("\n")
    else:
        start = match.end()
        nxt = re.search(r"^\[", text[start:], flags=re.MULTILINE)
        end = start + nxt.start() if nxt else len(text)
        body, found = re.subn(rf"^{re.escape(key)}\s*=.*$", line.replace("\\", "\\\\"), text[start:end], count=1,
                              flags=re.MULTILINE)
        if not found:
            body = f"\n{line}" + body
        text = text[:start] + body + text[end:]
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text(text)
