"""The compose deployment where no container registry is reachable: Docker's engine from Debian's packages (and
Compose v2 from Debian's next release, the one that packages it), and stand-ins for the images the compose file and
the Dockerfile name (postgres, redis, apache/airflow), built from Debian's packages and PyPI and tagged with those
names, so that `docker compose up -d --build` runs as the README says. A machine that can pull the official images
needs none of this.

    python scripts/compose_stack.py engine    # install what is missing, start dockerd if none runs (prints its pid)
    python scripts/compose_stack.py images    # the stand-ins that are missing (a pulled official image is kept)
    python scripts/compose_stack.py stop PID  # stop the dockerd `engine` started
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STANDINS = Path(__file__).resolve().parent / "standins"
BASE = "usergroup-standin/debian:bookworm"
LABEL = "org.usergroup.standin"
SOURCES = Path("/etc/apt/sources.list.d/debian.sources")
HOST_CAS = Path("/usr/local/share/ca-certificates")  # extra CAs this host trusts (a TLS-inspecting proxy's)
STATE = Path("/var/tmp/usergroup-compose")  # dockerd's log and the apt lists of Compose's release


def run(*cmd: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, **kw)


def works(*cmd: str) -> bool:
    return subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0


def mirror() -> str:
    """The Debian mirror this machine's apt uses."""
    if SOURCES.exists() and (found := re.search(r"^URIs:\s*(\S+)", SOURCES.read_text(), re.M)):
        return found.group(1)
    return "http://deb.debian.org/debian"


def install() -> None:
    """docker.io and debootstrap from Debian 12; Compose v2 and buildx from Debian 13 (12 has only Compose v1),
    read from a list of their own: this machine's apt sources stay as they are."""
    apt = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if not (shutil.which("dockerd") and shutil.which("debootstrap")):
        run("apt-get", "update", "-q", env=apt)
        run("apt-get", "install", "-y", "-q", "--no-install-recommends", "docker.io", "debootstrap",
            "ca-certificates", "iptables", env=apt)
    if works("docker", "compose", "version") and works("docker", "buildx", "version"):
        return
    lists, debs = STATE / "apt", STATE / "debs"
    for d in (lists / "lists" / "partial", lists / "cache" / "archives" / "partial", debs):
        d.mkdir(parents=True, exist_ok=True)
    (lists / "trixie.list").write_text(f"deb {mirror()} trixie main\n")
    options = ["-o", f"Dir::Etc::sourcelist={lists / 'trixie.list'}", "-o", "Dir::Etc::sourceparts=/nonexistent",
               "-o", f"Dir::State::Lists={lists / 'lists'}", "-o", f"Dir::Cache={lists / 'cache'}"]
    run("apt-get", *options, "update", "-q", env=apt)
    run("apt-get", *options, "download", "docker-compose", "docker-buildx", cwd=debs, env=apt)
    run("apt-get", "install", "-y", "-q", "--no-install-recommends", *map(str, sorted(debs.glob("*.deb"))), env=apt)


def engine() -> int | None:
    """A running Docker engine: the pid of the dockerd started here, or None if one ran already."""
    install()
    if works("docker", "info"):
        return None
    STATE.mkdir(parents=True, exist_ok=True)
    log = open(STATE / "dockerd.log", "ab")  # noqa: SIM115 - dockerd writes to it after we return
    dockerd = subprocess.Popen(["dockerd", "--storage-driver", "overlay2"], stdout=log, stderr=log,
                               start_new_session=True)
    deadline = time.monotonic() + 60
    while not works("docker", "info"):
        if dockerd.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"dockerd did not start: see {STATE / 'dockerd.log'}")
        time.sleep(0.5)
    return dockerd.pid


def stop(pid: int) -> None:
    """Stop the dockerd `engine` started (its containerd goes with it)."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.5)
    os.kill(pid, signal.SIGKILL)


def wanted() -> dict[str, str]:
    """Stand-in -> the image name it takes: those the compose file and the Dockerfile name."""
    compose = (ROOT / "docker-compose.yaml").read_text()
    dockerfile = (ROOT / "Dockerfile").read_text()
    return {"postgres": re.search(r"image:\s*(postgres:\S+)", compose).group(1),
            "redis": re.search(r"image:\s*(redis:\S+)", compose).group(1),
            "airflow": re.search(r"^FROM\s+(\S+)", dockerfile, re.M).group(1)}


def present(image: str) -> bool:
    return works("docker", "image", "inspect", image)


def base() -> None:
    """A Debian 12 image from debootstrap, trusting this host's extra CAs (for apt and pip in the builds)."""
    if present(BASE):
        return
    with tempfile.TemporaryDirectory(prefix="usergroup-rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        run("debootstrap", "--variant=minbase", "--include=ca-certificates", "bookworm", str(rootfs), mirror(),
            stdout=subprocess.DEVNULL)
        (rootfs / "etc/apt/sources.list").write_text(
            f"deb {mirror()} bookworm main\ndeb {mirror()} bookworm-updates main\n"
            f"deb {mirror().replace('/debian', '/debian-security')} bookworm-security main\n")
        (rootfs / "etc/apt/apt.conf.d/01norecommends").write_text(
            'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n')
        policy = rootfs / "usr/sbin/policy-rc.d"
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
        for ca in HOST_CAS.glob("*.crt"):
            shutil.copy(ca, rootfs / "usr/local/share/ca-certificates" / ca.name)
        run("chroot", str(rootfs), "update-ca-certificates", stdout=subprocess.DEVNULL)
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for f in (rootfs / junk).glob("*"):
                if f.is_file():
                    f.unlink()
        for f in ("etc/resolv.conf", "etc/hostname"):
            (rootfs / f).write_text("")
        tar = subprocess.Popen(["tar", "--numeric-owner", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        run("docker", "import", "-c", 'CMD ["bash"]', "-c", "ENV LANG=C.UTF-8", "-c", f"LABEL {LABEL}=base", "-",
            BASE, stdin=tar.stdout, stdout=subprocess.DEVNULL)
        if tar.wait():
            raise RuntimeError("tar of the rootfs failed")


def images() -> None:
    """Each stand-in whose name no image has yet (built once; an official image pulled under that name is kept)."""
    missing = {name: tag for name, tag in wanted().items() if not present(tag)}
    if not missing:
        return
    base()
    for name, tag in missing.items():
        with tempfile.TemporaryDirectory(prefix=f"usergroup-{name}-") as context:
            shutil.copytree(STANDINS / name, context, dirs_exist_ok=True)
            if name == "airflow":
                shutil.copy(ROOT / "requirements.txt", Path(context) / "requirements.txt")
            run("docker", "build", "-q", "--label", f"{LABEL}={name}", "-t", tag, context, stdout=subprocess.DEVNULL)
        print(f"compose_stack: built {tag} (a stand-in: scripts/standins/{name})", file=sys.stderr)


def main(argv: list[str]) -> int:
    if argv[:1] == ["engine"]:
        print(engine() or "")
    elif argv[:1] == ["images"]:
        images()
    elif argv[:1] == ["stop"] and len(argv) == 2:
        stop(int(argv[1]))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
