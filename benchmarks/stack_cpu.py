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
import time
from collections import Counter
from typing import NamedTuple

HZ = os.sysconf("SC_CLK_TCK")
KINDS = (("LocalExecutor", "executor workers + tasks"), ("api-server", "api-server"), ("scheduler", "scheduler"),
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


def main(argv: list[str]) -> int:
    if "--" not in argv or argv.index("--") == len(argv) - 1:
        print(__doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
        return 2
    command = argv[argv.index("--") + 1:]
    kinds: dict[int, str] = {}
    first: dict[int, Sample] = {}
    last: dict[int, Sample] = {}
    start = time.monotonic()
    proc = subprocess.Popen(command)
    while True:
        alive = set()
        for pid in sorted(int(entry) for entry in os.listdir("/proc") if entry.isdigit()):  # parents first
            if not (now := sample(pid)):
                continue
            if pid not in kinds and not (kind := component(pid, kinds.get(now.ppid), proc.pid)):
                continue
            kinds.setdefault(pid, kind)
            first.setdefault(pid, now)
            last[pid] = now
            alive.add(pid)
        if proc.poll() is not None:
            break
        time.sleep(0.5)
    wall = time.monotonic() - start
    seen = {pid: last[pid].own - first[pid].own + last[pid].reaped - first[pid].reaped for pid in kinds}
    counted = dict(seen)
    for pid in kinds.keys() - alive:  # ended: its parent's reaped CPU holds what was seen of it
        if last[pid].ppid in kinds:
            counted[last[pid].ppid] -= seen[pid]
    cpu: Counter[str] = Counter()
    for pid, seconds in counted.items():
        cpu[kinds[pid]] += seconds
    print(f"stack_cpu: {wall:.0f} s wall, {os.cpu_count() * wall:.0f} CPU-s available, "
          f"{sum(cpu.values()):.0f} CPU-s counted")
    for kind, seconds in cpu.most_common():
        print(f"  {seconds:8.1f} CPU-s  {kind}")
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
