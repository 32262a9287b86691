"""The one runner: a task's step for the processes of a run, a chunk of them per transaction; a single run is a
chunk of one. It writes the trail (step rows, links, progress, failures) and commits what the steps return."""

import logging
import signal
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from pydantic import ValidationError
from pydantic_core import to_jsonable_python
from sqlalchemy.exc import IntegrityError

from usergroup.domain import ProcessStatus, SubscriptionModel, Target
from usergroup.domain.errors import LifecycleError
from usergroup.domain.product import Product
from usergroup.engine.step import AbortProcess, State, Step, StepContext, StepError
from usergroup.ossbss.errors import PermanentError
from usergroup.settings import settings
from usergroup.store.errors import (
    DuplicateNameError,
    ProcessAbortedError,
    RefusedError,
    StaleSubscriptionError,
    StoreError,
)
from usergroup.store.mappings import mapping_for
from usergroup.store.repository import Repository, Store

log = logging.getLogger(__name__)

TRACEBACK_TAIL = 4000

# Errors that another try cannot cure, by our own classes: the process fails at once instead of being retried. Any
# other error (the OSS/BSS's TransientError, a builtin one) is retried.
PERMANENT_ERRORS = (StoreError, PermanentError, LifecycleError, StepError, ValidationError)


@dataclass(frozen=True)
class TaskTry:
    """One try of one task of a DAG run, running `step`: what the trail records of it."""

    step: Step
    task_id: str
    workflow_target: str
    try_number: int
    map_index: int = -1
    hostname: str | None = None
    dag_id: str = ""  # the run, for a task that runs many of its processes
    run_id: str = ""
    note: str | None = None  # what the trail says of the try besides its outcome (who answered an input step)

    def row(self, started_at: datetime) -> dict[str, Any]:
        return {"name": self.step.name, "task_id": self.task_id, "map_index": self.map_index,
                "try_number": self.try_number, "hostname": self.hostname, "started_at": started_at,
                **({"note": self.note} if self.note else {})}


class RunStopped(BaseException):  # noqa: N818 - named for what happened, like Airflow's AirflowTaskTerminated
    """Airflow stopped the task (SIGTERM: its run was marked failed or success, or the task was stopped)."""


@contextmanager
def stopped_by_sigterm() -> Iterator[None]:
    """While a step runs, SIGTERM unwinds it (its transaction rolls back) and the process is left `aborted`."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)

    def on_term(signum, frame):
        if callable(previous):
            previous(signum, frame)
        raise RunStopped("the task was stopped by Airflow (SIGTERM) before the step completed")

    signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class Chunk:
    """The store as the steps of one chunk see it (`step.StepStore`): a name claim is answered from one claim of
    every name the chunk's processes ask for in that scope, the links and completions the steps ask for are
    written with the chunk's trail; the reads and locks are the repository's own."""

    def __init__(self, repo: Repository, task: TaskTry, states: dict[UUID, State], many: bool):
        self.repo, self.task, self.states, self.many = repo, task, states, many
        self.asked: dict[tuple[str, str], dict[UUID, str]] = {}  # the names the states ask for, by scope
        self.claims: dict[tuple[str, str], dict[UUID, str]] = {}  # why each of those is refused
        self.links: dict[UUID, UUID] = {}
        self.completed: set[UUID] = set()

    def claim_name(self, product_type: str, scope: UUID | str, name: str, process_id: UUID | str,
                   subscription_id: UUID | str | None = None) -> None:
        pid, key = UUID(str(process_id)), (product_type, str(scope))
        if key not in self.asked:  # read once per scope: a chunk's steps claim one name each
            unique = mapping_for(product_type).unique_name
            self.asked[key] = {UUID(s["process_id"]): s[unique.field] for s in self.states.values()
                               if str(s.get(unique.scope_input)) == str(scope) and isinstance(s.get(unique.field), str)}
        names = self.asked[key]
        if subscription_id is not None or names.get(pid) != name:  # a rename, or a name not in the states
            return self.repo.claim_name(product_type, scope, name, pid, subscription_id)
        if key not in self.claims:
            run = (self.task.dag_id, self.task.run_id) if self.many else None
            self.claims[key] = self.repo.claim_names(product_type, scope, names, run=run)
        if (refusal := self.claims[key].get(pid)) is not None:
            raise DuplicateNameError(refusal)
        return None

    def link_subscription(self, process_id: UUID | str, subscription_id: UUID | str, workflow_target: str) -> None:
        self.links[UUID(str(process_id))] = UUID(str(subscription_id))

    def complete_process(self, process_id: UUID | str) -> None:
        self.completed.add(UUID(str(process_id)))

    def get_subscription(self, subscription_id: UUID) -> SubscriptionModel | None:
        return self.repo.get_subscription(subscription_id)

    def product_of(self, subscription_id: UUID) -> Product | None:
        return self.repo.product_of(subscription_id)

    def refusal_context(self, sub: SubscriptionModel) -> dict[str, Any]:
        return self.repo.refusal_context(sub)

    def lock_in_sync(self, subscription_id: UUID, product_type: str) -> SubscriptionModel:
        return self.repo.lock_in_sync(subscription_id, product_type)

    def unsync(self, subscription_id: UUID, process_id: UUID, target: Target,
               seen_version: int | None = None) -> SubscriptionModel:
        return self.repo.unsync(subscription_id, process_id, target, seen_version)


def run_one(task: TaskTry, state: State, *, store: Store, oss: Any, opening: dict[str, Any] | None = None,
            checks: tuple[Step, ...] = ()) -> State:
    """Run one try of the task over one process's `state`: a chunk of one, whose failure raises.

    The process row is locked first, so of two live tries of one task exactly one runs the step. The step's
    updates are merged into the state, a returned subscription saved, the step row and the process's progress
    written, all in one transaction; on failure nothing of the step is committed, the failure is recorded and
    raised. A task that already committed in this process (it died after its commit) is not run again: its
    recorded state is returned. A step of an aborted process refuses to run. The first task (`opening`: what the
    process row records of the run) runs the workflow's input `checks` first, in the same transaction: a refused
    input writes nothing (and ends, aborted, a process an earlier try opened)."""
    pid, started_at = UUID(state["process_id"]), datetime.now(UTC)
    try:
        with store.transaction() as repo:
            if opening is not None:
                if checks and repo.completed_step(pid, task.task_id, task.map_index) is None:
                    context = StepContext(store=Chunk(repo, task, {pid: state}, many=False), oss=oss)
                    for check in checks:
                        state = {**state, **to_jsonable_python(check(state, context))}
                repo.open_processes([{"process_id": pid, "input_state": state, **opening}])
            row = repo.enter_step(pid, task.task_id, task.map_index)
            if row.done_try is not None:
                log.info("Task %s already committed by try %s of process %s: not run again, its state is returned",
                         task.task_id, row.done_try, pid)
                if row.done_try != task.try_number:
                    repo.record_steps([{**task.row(started_at), "process_id": pid, "status": "replayed",
                                        "state": row.done_state, "error": None,
                                        "note": f"committed by try {row.done_try}; not run again"}])
                return row.done_state
            return _run_chunk(repo, task, oss, {pid: state}, started_at, many=False)[0][pid]
    except ProcessAbortedError:  # the process keeps its abort
        raise
    except StoreError as exc:  # refused: another workflow holds the subscription, a duplicate name, ...
        # A refused workflow will not go on: its process is aborted. A refused input writes nothing, but ends
        # (aborts) a process an earlier try of the first task opened.
        refused = opening is not None or isinstance(exc, RefusedError)
        record_failures(store, task, {pid: exc}, started_at, ProcessStatus.ABORTED if refused else ProcessStatus.FAILED,
                        existing_only=opening is not None)
        raise
    except (RunStopped, AbortProcess) as exc:
        record_failures(store, task, {pid: exc}, started_at, ProcessStatus.ABORTED, _opened(opening, state))
        raise
    except Exception as exc:
        permanent = isinstance(exc, PERMANENT_ERRORS)
        record_failures(store, task, {pid: exc}, started_at, opening=_opened(opening, state),
                        existing_only=permanent and opening is not None)
        raise


def run_many(task: TaskTry, *, store: Store, oss: Any, previous: str | None = None,
             opening: dict[str, Any] | None = None, states: list[State] = (), refused: dict[UUID, str] | None = None,
             prepare: Callable[[list[State], Any], Any] | None = None) -> tuple[int, dict[UUID, tuple[State, str]]]:
    """Run one try of the task for every process of its run, a chunk per transaction: the first task (`opening`)
    opens a process for each of `states` (one opened by an earlier try keeps the input it recorded) and fails
    those `refused` with their reason; a later task runs each process with the state the `previous` task left it
    (one that has none failed or stopped before: it is not run). A process that committed the task, or was
    aborted, is not run again. An item's permanent error fails its process only, in its chunk's transaction;
    any other error fails the chunk (nothing of it is committed) and is raised. `prepare` answers a service for a
    whole chunk at once (a batch call). On PostgreSQL `bulk_workers` chunks run at once, each in its own
    transaction (`in_parallel`). Returns how many ran, and the failures (input state, why) by process."""
    size = settings().chunk_size
    stop = threading.Event()  # the task is stopped (SIGTERM): a chunk in flight rolls back

    def chunk(repo: Repository, rows: dict[UUID, Any]) -> tuple[int, dict[UUID, tuple[State, str]]]:
        todo = {pid: r.previous_state if previous else r.input_state for pid, r in rows.items()
                if r.done_try is None and r.status != ProcessStatus.ABORTED}
        todo = {pid: s for pid, s in todo.items() if s is not None}
        if not todo:
            return 0, {}
        states_, failures = _run_chunk(repo, task, oss, todo, datetime.now(UTC), many=True, prepare=prepare,
                                       refused=refused or {})
        if stop.is_set():
            raise RunStopped("the task was stopped by Airflow (SIGTERM) before this chunk committed")
        return len(states_), {pid: (todo[pid], why) for pid, (why, _) in failures.items()}

    if opening is not None:
        def first(part: list[State]) -> tuple[int, dict[UUID, tuple[State, str]]]:
            part = {UUID(s["process_id"]): s for s in part}
            with store.transaction() as repo:
                repo.open_processes([{"process_id": pid, "input_state": s, **opening} for pid, s in part.items()])
                return chunk(repo, repo.lock(list(part), task.task_id))

        work, parts = first, [states[start:start + size] for start in range(0, len(states), size)]
    else:
        def later(ids: list[UUID]) -> tuple[int, dict[UUID, tuple[State, str]]]:
            with store.transaction() as repo:
                return chunk(repo, repo.lock(ids, task.task_id, task.map_index, previous))

        with store.transaction() as repo:
            ids = repo.run_process_ids(task.dag_id, task.run_id)
        if not ids:
            raise NoItemsError("the run has no items")
        work, parts = later, [ids[start:start + size] for start in range(0, len(ids), size)]
    workers = settings().bulk_workers if store.engine.dialect.name == "postgresql" else 1
    ran, failed = 0, {}
    for n, fails in in_parallel(work, parts, workers, stop):
        ran += n
        failed.update(fails)
    return ran, failed


def in_parallel(work: Callable[[Any], Any], parts: list[Any], workers: int, stop: threading.Event) -> list[Any]:
    """`work` for each of `parts`, by `workers` threads at once (one: here, in order). While one waits for the
    database (which releases the GIL) another runs its steps: PostgreSQL's work overlaps ours. After an error no
    part begins (those in flight finish, as the parts before it would have, one at a time) and it is raised once
    every thread ended. A RunStopped (SIGTERM) that reaches this thread while it waits sets `stop`, which a part in
    flight must see before it commits, and is raised once they ended."""
    if workers <= 1 or len(parts) <= 1:
        return [work(part) for part in parts]
    results, errors, lock, left = [], [], threading.Lock(), iter(parts)

    def worker() -> None:
        while not errors and not stop.is_set():
            with lock:
                part = next(left, None)
            if part is None:
                return
            try:
                results.append(work(part))
            except BaseException as exc:  # noqa: BLE001 - raised in the thread that waits for this one
                errors.append(exc)

    threads = [threading.Thread(target=worker, name=f"chunks-{n}", daemon=True)
               for n in range(min(workers, len(parts)))]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    except BaseException:  # stopped (SIGTERM) while starting or waiting: the chunks in flight roll back
        stop.set()
        for thread in threads:
            with suppress(RuntimeError):  # one not started: it sees `stop` and begins nothing
                thread.join()
        raise
    if errors:
        raise errors[0]
    return results


class NoItemsError(StoreError):
    """A later task of a run for many items found none: its first task refused the input (or never ran)."""


def _run_chunk(repo: Repository, task: TaskTry, oss: Any, todo: dict[UUID, State], started_at: datetime, *,
               many: bool, prepare: Callable | None = None, refused: dict[UUID, str] | None = None,
               ) -> tuple[dict[UUID, State], dict[UUID, tuple[str, str]]]:
    """Run the step for each process of `todo` and write the chunk: the subscriptions the steps return, links,
    step rows, progress, and (`many`) each item's own failure. A chunk of one raises its failure instead."""
    if many:  # a chunk of one was marked running as it was locked
        repo.running(list(todo), task.task_id)
    served = prepare(list(todo.values()), oss) if prepare else oss
    updates, failures, chunk = _steps(repo, task, served, todo, many, refused or {})
    if not many:
        return _write(repo, task, todo, updates, failures, chunk, started_at, many)
    try:
        with repo.conn.begin_nested():
            return _write(repo, task, todo, updates, failures, chunk, started_at, many)
    except IntegrityError:
        pass
    # One item's write broke a constraint: each item in its own savepoint, the one that broke it fails.
    states, errors = {}, {}
    for pid in todo:
        one = ({pid: updates[pid]} if pid in updates else {}), ({pid: failures[pid]} if pid in failures else {})
        try:
            with repo.conn.begin_nested():
                s, e = _write(repo, task, {pid: todo[pid]}, *one, chunk, started_at, many)
        except IntegrityError as exc:
            refusal = StoreError(f"the store refused this item's write: {str(exc.orig).splitlines()[0]}")
            with repo.conn.begin_nested():
                s, e = _write(repo, task, {pid: todo[pid]}, {}, {pid: refusal}, chunk, started_at, many)
        states.update(s)
        errors.update(e)
    return states, errors


def _steps(repo: Repository, task: TaskTry, oss: Any, todo: dict[UUID, State], many: bool,
           refused: dict[UUID, str]) -> tuple[dict[UUID, State], dict[UUID, BaseException], Chunk]:
    """Each process's step; for many, in a savepoint of the chunk: if an item fails, the savepoint is rolled back
    and the others run again (a failed step may have written), until a pass has no new failure. A chunk of one
    raises its failure."""
    failures: dict[UUID, BaseException] = {pid: DuplicateNameError(refused[pid]) for pid in todo if pid in refused}
    while True:
        left = {pid: s for pid, s in todo.items() if pid not in failures}
        chunk = Chunk(repo, task, left, many)
        context = StepContext(store=chunk, oss=oss)
        savepoint = repo.conn.begin_nested() if many else None
        updates, new = {}, {}
        for pid, state in left.items():
            try:
                updates[pid] = task.step(state, context)
            except PERMANENT_ERRORS as exc:
                if not many:
                    raise
                new[pid] = exc
        if not new:
            if savepoint is not None:
                savepoint.commit()
            return updates, failures, chunk
        savepoint.rollback()
        failures |= new


def _write(repo: Repository, task: TaskTry, todo: dict[UUID, State], updates: dict[UUID, State],
           failures: dict[UUID, BaseException], chunk: Chunk, started_at: datetime, many: bool,
           ) -> tuple[dict[UUID, State], dict[UUID, tuple[str, str]]]:
    """Save the chunk's subscriptions, links, step rows and processes' progress, and each item's failure."""
    failures = dict(failures)
    subs = {pid: u["subscription"] for pid, u in updates.items()
            if isinstance(u.get("subscription"), SubscriptionModel)}
    saved, refusals = repo.save_subscriptions(list(subs.values()))
    saved = {s.subscription_id: s for s in saved}
    if refusals and not many:
        raise StaleSubscriptionError(next(iter(refusals.values())))
    states, links, completed = {}, [], []
    for pid, update in updates.items():
        if (sub := subs.get(pid)) is not None:
            if sub.subscription_id in refusals:
                failures[pid] = StoreError(refusals[sub.subscription_id])
                continue
            update = {**update, "subscription": saved[sub.subscription_id]}
            # From its first commit on, the subscription is this process's (the in-sync guard sees it).
            if not _holds(todo[pid], sub):
                links.append((pid, sub.subscription_id))
        if pid in failures:
            continue
        if pid in chunk.links:
            links.append((pid, chunk.links[pid]))
        if pid in chunk.completed:
            completed.append(pid)
        states[pid] = {**todo[pid], **to_jsonable_python(update)}
    repo.link(links, task.workflow_target)
    repo.complete(completed)
    repo.record_events([event for pid in completed if (event := _event(states[pid], task)) is not None])
    repo.record_steps([{**task.row(started_at), "process_id": pid, "status": "success", "state": s, "error": None}
                       for pid, s in states.items()])
    errors = {pid: _error(exc) for pid, exc in failures.items()}
    repo.fail_steps(errors, ProcessStatus.FAILED, **task.row(started_at))
    return states, errors


def _event(state: State, task: TaskTry) -> dict[str, Any] | None:
    """What a completed process announces: its subscription as it left it."""
    if not isinstance(sub := state.get("subscription"), dict):
        return None
    return {"process_id": UUID(state["process_id"]), "subscription_id": UUID(sub["subscription_id"]),
            "product_type": sub["product"]["product_type"], "workflow_name": state["workflow_name"],
            "workflow_target": task.workflow_target, "status": sub["status"], "version": sub["version"]}


def _holds(state: State, sub: SubscriptionModel) -> bool:
    """Whether an earlier step of this process returned `sub` (it was saved and linked then)."""
    held = state.get("subscription")
    return isinstance(held, dict) and held.get("subscription_id") == str(sub.subscription_id)


def record_failures(store: Store, task: TaskTry, failures: dict[UUID, BaseException], started_at: datetime,
                    status: ProcessStatus = ProcessStatus.FAILED, opening: dict[str, Any] | None = None,
                    existing_only: bool = False) -> None:
    """Record failed tries in a transaction of their own (the step's rolled back): `opening` creates a process
    row where there is none yet, `existing_only` records nothing for a process that has none."""
    try:
        with store.transaction() as repo:
            if missing := {p for p in failures if repo.get_process(p) is None}:
                if existing_only:
                    failures = {p: e for p, e in failures.items() if p not in missing}
                elif opening is not None:
                    repo.open_processes([{"process_id": pid, **opening} for pid in missing])
            repo.fail_steps({pid: _error(exc) for pid, exc in failures.items()}, status, **task.row(started_at))
    except Exception:  # the store itself may be what failed; the task fails with the original error
        log.exception("Could not record the failure of task %s in process %s", task.task_id, ", ".join(
            map(str, failures)))


def _opened(opening: dict[str, Any] | None, state: State) -> dict[str, Any] | None:
    return {**opening, "input_state": state} if opening is not None else None


def _error(exc: BaseException) -> tuple[str, str]:
    return f"{type(exc).__name__}: {exc}", "".join(traceback.format_exception(exc))[-TRACEBACK_TAIL:]
