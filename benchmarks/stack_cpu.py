"""stack_cpu: the CPU a command costs this machine, by Airflow component, while it runs.

Samples /proc every 0.5 s while COMMAND runs and sums each process's CPU (user + system) into its component: the
api-server, the scheduler, the dag-processor, the triggerer, the LocalExecutor's workers with the task processes
they forked and reaped (their children's CPU), PostgreSQL (its backends and the ones its postmaster reaped), the
command itself and the rest. A process that starts and ends between two samples is counted only through the
parent that reaps it (so a task process through its LocalExecutor worker). Prints the command's wall time, the
CPU the machine had in that time, and each component's share.

    python benchmarks/stack_cpu.py -- python -m pytest -m live tests/e2e/test_live.py -k fifty
"""

import os
import subprocess
import sys
import time
from collections import Counter

HZ = os.sysconf("SC_CLK_TCK")
# the components whose reaped children (task processes, PostgreSQL backends, parsing processes) belong to them
REAPERS = ("executor workers + tasks", "celery workers + tasks", "postgres", "dag-processor")
KINDS = (("LocalExecutor", "executor workers + tasks"), ("api-server", "api-server"), ("scheduler", "scheduler"),
         ("dag-processor", "dag-processor"), ("triggerer", "triggerer"), ("celery", "celery workers + tasks"))


def component(pid: int, command_pid: int) -> str | None:
    try:
        cmd = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None
    if cmd.startswith("postgres"):
        return "postgres"
    for marker, kind in KINDS:
        if marker in cmd:
            return kind
    if cmd.startswith("airflow worker -- "):  # a task process: counted through the worker that reaps it
        return None
    return "the command" if pid == command_pid else ("other airflow" if "airflow" in cmd else None)


def times(pid: int) -> tuple[float, float] | None:
    """Own CPU and the CPU of the children it reaped, in seconds."""
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / HZ, (int(fields[13]) + int(fields[14])) / HZ


def main(argv: list[str]) -> int:
    if "--" not in argv or argv.index("--") == len(argv) - 1:
        print(__doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
        return 2
    command = argv[argv.index("--") + 1:]
    first: dict[int, tuple[float, float]] = {}
    last: dict[int, tuple[str, float, float]] = {}
    start = time.monotonic()
    proc = subprocess.Popen(command)
    while True:
        for entry in os.listdir("/proc"):
            if entry.isdigit() and (sample := times(int(entry))):
                pid = int(entry)
                kind = last[pid][0] if pid in last else component(pid, proc.pid)
                if kind:
                    first.setdefault(pid, sample)
                    last[pid] = (kind, *sample)
        if proc.poll() is not None:
            break
        time.sleep(0.5)
    wall = time.monotonic() - start
    cpu: Counter[str] = Counter()
    for pid, (kind, own, reaped) in last.items():
        cpu[kind] += own - first[pid][0] + (reaped - first[pid][1] if kind in REAPERS else 0)
    print(f"stack_cpu: {wall:.0f} s wall, {os.cpu_count() * wall:.0f} CPU-s available, "
          f"{sum(cpu.values()):.0f} CPU-s counted")
    for kind, seconds in cpu.most_common():
        print(f"  {seconds:8.1f} CPU-s  {kind}")
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
