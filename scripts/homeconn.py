"""The Airflow home's connections (`$AIRFLOW_HOME/connections.json`, read by its secrets backend).

    python scripts/homeconn.py setup [--store CONN | --no-store] [--ossbss CONN]  # the backend in airflow.cfg, defaults
    python scripts/homeconn.py set CONN_ID VALUE                     # set (or replace) one connection
    python scripts/homeconn.py show                                  # the connections, passwords hidden

`setup` writes a connection only where the file has none: the store's default is the embedded SQLite file
`$AIRFLOW_HOME/usergroup.db` (none with --no-store), the OSS/BSS's the fake. The home is AIRFLOW_HOME.
"""

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "plugins"))

from usergroup.airflow.home_file import (  # noqa: E402
    configure_backend,
    connections_path,
    read_connections,
    set_connection,
    set_option,
)

FAKE_OSSBSS = json.dumps({"conn_type": "usergroup_fake_ossbss"})


def embedded_store(home: Path) -> str:
    return json.dumps({"conn_type": "sqlite", "host": str(home / "usergroup.db")})


def hidden(value: str) -> str:
    try:
        conn = json.loads(value)
    except json.JSONDecodeError:
        return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", value)
    if isinstance(conn, dict) and conn.get("password"):
        conn["password"] = "***"
    return json.dumps(conn)


def setup(home: Path, store: str | None, ossbss: str | None, no_store: bool, core: dict[str, str]) -> None:
    if not (home / "airflow.cfg").exists():  # Airflow writes a new home's file first, with its secrets (the
        # execution API's JWT: without one each component makes its own, and every task is refused)
        subprocess.run([str(Path(sys.executable).parent / "airflow"), "config", "get-value", "core", "dags_folder"],
                       env={**os.environ, "AIRFLOW_HOME": str(home)}, check=True, capture_output=True)
    configure_backend(home / "airflow.cfg")
    for key, value in core.items():  # the DAG and plugin folders: `airflow dags list` with only AIRFLOW_HOME
        set_option(home / "airflow.cfg", "core", key, value)
    path = connections_path(home)
    if not no_store:
        set_connection(path, "usergroup_default", store or embedded_store(home), only_if_missing=store is None)
    set_connection(path, "usergroup_ossbss", ossbss or FAKE_OSSBSS, only_if_missing=ossbss is None)
    path.chmod(0o600)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("setup", help="name the backend in airflow.cfg and write the default connections")
    s.add_argument("--store", help="the store's connection (replaces one in the file)")
    s.add_argument("--no-store", action="store_true", help="write no default store connection")
    s.add_argument("--ossbss", help="the OSS/BSS connection (replaces one in the file)")
    s.add_argument("--dags-folder", help="pin [core] dags_folder in airflow.cfg")
    s.add_argument("--plugins-folder", help="pin [core] plugins_folder in airflow.cfg (and load_examples = False)")
    c = sub.add_parser("set", help="set one connection")
    c.add_argument("conn_id")
    c.add_argument("value")
    sub.add_parser("show", help="the home's connections, passwords hidden")
    args = parser.parse_args(argv)
    home = Path(os.environ.get("AIRFLOW_HOME") or Path.home() / "airflow").expanduser().resolve()
    path = connections_path(home)
    if args.command == "setup":
        core = {"dags_folder": args.dags_folder, "plugins_folder": args.plugins_folder,
                "load_examples": "False" if args.plugins_folder else None}
        setup(home, args.store, args.ossbss, args.no_store, {k: v for k, v in core.items() if v})
    elif args.command == "set":
        set_connection(path, args.conn_id, args.value)
    else:
        for conn_id, value in sorted(read_connections(path).items()):
            print(f"{conn_id}\t{hidden(value)}")
        print(f"# {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
