"""stack_cpu: the CPU a command costs this machine, by Airflow component, while it runs.

Samples /proc every 0.5 s while COMMAND runs and sums each process's CPU (user + system) into its component: the
api-server, the scheduler, the dag-processor, the triggerer, the LocalExecutor's (or Celery's) workers, PostgreSQL,
the command itself, other `airflow` processes. A process its command line does not name belongs to its parent's
component (a task process to its worker, a PostgreSQL backend to the server). A process is counted from its first
sample; the CPU of the children it reaped is added to it, less what was already counted of them, so a process that
starts and ends between two samples is counted through its parent, and none twice. Prints the command's wall time,
the CPU the machine had in that time, and each component's CPU.

    python benchmarks/stack_cpu.py -- python -m pytest -m live tests/e2e/test_live.py -k fifty
"""

import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple

HZ = os.sysconf("SC_CLK_TCK")
KINDS = (("LocalExecutor", "executor workers + tasks"), ("api-server", "api-server"),
         ("api_server", "api-server"),  # its title once started (setproctitle)
         ("scheduler", "scheduler"),
         ("dag-processor", "dag-processor"), ("triggerer", "triggerer"), ("celery", "celery workers + tasks"),
         ("postgres", "postgres"))


class Sample(NamedTuple):
    ppid: int
    own: float  # CPU-s of the process itself
    reaped: float  # CPU-s of the children it has waited for


def sample(pid: int) -> Sample | None:
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return Sample(int(fields[1]), (int(fields[11]) + int(fields[12])) / HZ, (int(fields[13]) + int(fields[14])) / HZ)


def component(pid: int, parent: str | None, command_pid: int) -> str | None:
    try:
        cmd = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None
    program = cmd.split(" ", 1)[0]
    for marker, kind in KINDS:
        if marker in (program if marker == "postgres" else cmd):
            return kind
    if parent:
        return parent
    return "the command" if pid == command_pid else ("other airflow" if "airflow" in cmd else None)


class Sampler:
    """Each process's CPU by component, from its first sample to its last (`sample()` takes one; `cpu()` sums)."""

    def __init__(self, command_pid: int):
        self.command_pid = command_pid
        self.kinds: dict[int, str] = {}
        self.first: dict[int, Sample] = {}
        self.last: dict[int, Sample] = {}
        self.alive: set[int] = set()

    def sample(self) -> None:
        self.alive = set()
        for pid in sorted(int(entry) for entry in os.listdir("/proc") if entry.isdigit()):  # parents first
            if not (now := sample(pid)):
                continue
            if pid not in self.kinds and not (kind := component(pid, self.kinds.get(now.ppid), self.command_pid)):
                continue
            self.kinds.setdefault(pid, kind)
            self.first.setdefault(pid, now)
            self.last[pid] = now
            self.alive.add(pid)

    def cpu(self) -> Counter[str]:
        first, last = self.first, self.last
        seen = {pid: last[pid].own - first[pid].own + last[pid].reaped - first[pid].reaped for pid in self.kinds}
        counted = dict(seen)
        for pid in self.kinds.keys() - self.alive:  # ended: its parent's reaped CPU holds what was seen of it
            if last[pid].ppid in self.kinds:
                counted[last[pid].ppid] -= seen[pid]
        cpu: Counter[str] = Counter()
        for pid, seconds in counted.items():
            cpu[self.kinds[pid]] += seconds
        return cpu


@contextmanager
def measuring(every: float = 0.5) -> Iterator[Counter[str]]:
    """The CPU by component while the block runs, this process the command: the Counter it gives is filled when
    the block ends."""
    sampler, done, out = Sampler(os.getpid()), threading.Event(), Counter()
    sampler.sample()

    def sampling() -> None:
        while not done.wait(every):
            sampler.sample()

    thread = threading.Thread(target=sampling, daemon=True)
    thread.start()
    try:
        yield out
    finally:
        done.set()
        thread.join()
        sampler.sample()
        out.update(sampler.cpu())


def main(argv: list[str]) -> int:
    if "--" not in argv or argv.index("--") == len(argv) - 1:
        print(__doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
        return 2
    command = argv[argv.index("--") + 1:]
    start = time.monotonic()
    proc = subprocess.Popen(command)
    sampler = Sampler(proc.pid)
    while True:
        sampler.sample()
        if proc.poll() is not None:
            break
        time.sleep(0.5)
    wall = time.monotonic() - start
    cpu = sampler.cpu()
    print(f"stack_cpu: {wall:.0f} s wall, {os.cpu_count() * wall:.0f} CPU-s available, "
          f"{sum(cpu.values()):.0f} CPU-s counted")
    for kind, seconds in cpu.most_common():
        print(f"  {seconds:8.1f} CPU-s  {kind}")
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
