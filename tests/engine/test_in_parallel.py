"""in_parallel: a bulk task's chunks by a few threads at once; errors and SIGTERM as one thread would see them."""

import os
import signal
import threading

import pytest

from usergroup.engine.runner import RunStopped, in_parallel, stopped_by_sigterm

WAIT = 10  # seconds a part waits for another: far more than a thread needs to start


def test_every_part_runs_once_and_two_run_at_once():
    both = threading.Barrier(2, timeout=WAIT)  # broken (an error) unless two parts are in flight together
    seen = []

    def work(part):
        if part < 2:
            both.wait()
        seen.append((part, threading.current_thread().name))
        return part * 10

    results = in_parallel(work, list(range(7)), 2, threading.Event())
    assert sorted(results) == [0, 10, 20, 30, 40, 50, 60]
    assert sorted(p for p, _ in seen) == list(range(7)) and len({t for _, t in seen}) == 2


def test_one_worker_runs_the_parts_here_in_order():
    seen = []
    assert in_parallel(lambda p: seen.append((p, threading.current_thread())) or p, [3, 1, 2], 1,
                       threading.Event()) == [3, 1, 2]
    assert seen == [(3, threading.main_thread()), (1, threading.main_thread()), (2, threading.main_thread())]


def test_after_an_error_no_part_begins_the_one_in_flight_finishes_and_the_error_is_raised():
    failing, finished, begun = threading.Event(), [], []

    def work(part):
        begun.append(part)
        if part == 0:
            failing.wait(WAIT)  # in flight while part 1 fails
            finished.append(part)
            return part
        if part == 1:
            try:
                raise ValueError("the OSS/BSS is away")
            finally:
                failing.set()
        return part

    with pytest.raises(ValueError, match="the OSS/BSS is away"):
        in_parallel(work, list(range(6)), 2, threading.Event())
    assert finished == [0] and sorted(begun) == [0, 1]


def test_sigterm_while_the_parts_run_stops_them_before_they_commit():
    stop, in_flight, committed = threading.Event(), threading.Event(), []

    def work(part):
        in_flight.set()
        assert stop.wait(WAIT), "the part never saw the stop"
        if stop.is_set():  # what run_many's chunk does before its commit
            raise RunStopped("stopped before this chunk committed")
        committed.append(part)

    def term_when_in_flight():
        in_flight.wait(WAIT)
        os.kill(os.getpid(), signal.SIGTERM)

    killer = threading.Thread(target=term_when_in_flight)
    with stopped_by_sigterm(), pytest.raises(RunStopped, match="SIGTERM"):
        killer.start()
        in_parallel(work, list(range(4)), 2, stop)
    killer.join()
    assert stop.is_set() and committed == []
    assert [t.name for t in threading.enumerate() if t.name.startswith("chunks-")] == []
