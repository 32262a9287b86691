"""A workflow run for many items at once: each task runs its step for every item of the run, a chunk per
transaction, every item a process of its own with the trail a single run gives it."""

import logging
import resource
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from airflow.sdk import Variable, task
from airflow.sdk.exceptions import AirflowFailException
from pydantic_core import to_jsonable_python
from sqlalchemy.exc import IntegrityError

from usergroup.adapter import (
    CUSTOMER_VARIABLE,
    DEFAULT_CUSTOMER_ID,
    PERMANENT_ERRORS,
    TRACEBACK_TAIL,
    RunStopped,
    initial_state,
    opening_of,
    process_id_for,
    services,
    stopped_by_sigterm,
)
from usergroup.domain import ProcessStatus, SubscriptionModel
from usergroup.domain.names import name_key
from usergroup.step import State, Step
from usergroup.store.batch import Batch
from usergroup.store.mappings import mapping_for
from usergroup.store.repository import DuplicateNameError, Store, StoreError
from usergroup.workflow import Bulk

log = logging.getLogger(__name__)

CHUNK_SIZE = 500  # items per transaction
BULK_TIMEOUT = timedelta(hours=1)  # a task runs its step for up to 10,000 items
NAMED = 20  # failed items a task's error names; the rest are counted


class ChunkRepository:
    """The repository a step sees in a chunk: the writes the create steps ask for are queued for the chunk's
    batch writes, a name claim is answered from one claim of the whole chunk; anything else is the repository's
    own (its reads, per item)."""

    def __init__(self, batch: Batch, states: list[State]):
        self._batch, self._states = batch, states
        self._claims: dict[tuple[str, str], dict[UUID, str]] = {}
        self.links: dict[UUID, tuple[UUID, str]] = {}
        self.completed: set[UUID] = set()

    def claim_name(self, product_type: str, scope: UUID | str, name: str, process_id: UUID | str,
                   subscription_id: UUID | str | None = None) -> None:
        if subscription_id is not None:  # a rename: not what a bulk create does
            return self._batch.repo.claim_name(product_type, scope, name, process_id, subscription_id)
        if (key := (product_type, str(scope))) not in self._claims:
            unique = mapping_for(product_type).unique_name
            names = {UUID(s["process_id"]): s[unique.field] for s in self._states
                     if str(s.get(unique.scope_input)) == str(scope) and isinstance(s.get(unique.field), str)}
            self._claims[key] = self._batch.claim_names(product_type, UUID(str(scope)), names)
        if (refusal := self._claims[key].get(UUID(str(process_id)))) is not None:
            raise DuplicateNameError(refusal)
        return None

    def link_subscription(self, process_id: UUID, subscription_id: UUID, workflow_target: str) -> None:
        self.links[UUID(str(process_id))] = (UUID(str(subscription_id)), workflow_target)

    def complete_process(self, process_id: UUID) -> None:
        self.completed.add(UUID(str(process_id)))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._batch.repo, name)


class BatchStep:
    """One try of the task `task_id` (running `step`) of a bulk run, for all of the run's items."""

    def __init__(self, bulk: Bulk, step: Step, task_id: str, index: int, *, store: Store, oss: Any, dag_run: Any,
                 try_number: int, hostname: str | None = None):
        self.bulk, self.step, self.task_id, self.index = bulk, step, task_id, index
        self.store, self.oss, self.dag_run, self.try_number, self.hostname = store, oss, dag_run, try_number, hostname
        self.previous = bulk.workflow.task_ids[index - 1] if index else None
        self.ran, self.failed = 0, {}  # failed: process id -> (its input state, why)

    def first(self, states: list[State], refused: dict[UUID, str]) -> None:
        """The first task: open every item's process (a chunk at a time), then run the step for it; an item
        `refused` (a name given twice in the run) fails with its reason."""
        opening = opening_of(self.bulk.workflow, self.dag_run)
        for start in range(0, len(states), CHUNK_SIZE):
            part = {UUID(s["process_id"]): s for s in states[start:start + CHUNK_SIZE]}
            with self.store.transaction() as repo:
                batch = Batch(repo, self.dag_run.dag_id, self.dag_run.run_id)
                batch.start_processes([{"process_id": pid, "input_state": s, **_row(opening)}
                                       for pid, s in part.items()])
                found = batch.lock(ids=list(part), inputs=True)
                # A process opened by an earlier try keeps the input it recorded (a source edited since changes
                # nothing of it).
                self._chunk(batch, {pid: status for pid, (status, _) in found.items()},
                            {pid: found[pid][1] if pid in found else s for pid, s in part.items()}, refused)

    def next(self) -> None:
        """A later task: the run's processes in id order, a chunk at a time, each item with the state the
        previous task left it (an item that has none failed or was stopped before: it is not run)."""
        after = None
        while True:
            with self.store.transaction() as repo:
                batch = Batch(repo, self.dag_run.dag_id, self.dag_run.run_id)
                status = batch.lock(after=after, limit=CHUNK_SIZE)
                if not status:
                    if after is None:  # the first task refused the input (or never ran): the run has nothing
                        raise AirflowFailException(f"{self.task_id}: the run has no items: its first task, "
                                                   f"{self.bulk.workflow.task_ids[0]}, opened none (see its log)")
                    return
                left = batch.committed(list(status), [self.previous])
                inputs = {pid: left[pid, self.previous] for pid in status if (pid, self.previous) in left}
                self._chunk(batch, status, inputs, {})
                after = max(status)

    def _chunk(self, batch: Batch, status: dict[UUID, str], inputs: dict[UUID, State], refused: dict[UUID, str]):
        done = {pid for pid, _ in batch.committed(list(inputs), [self.task_id])}
        todo = {pid: s for pid, s in inputs.items() if pid not in done and status.get(pid) != ProcessStatus.ABORTED}
        if not todo:
            return
        started_at = datetime.now(UTC)
        repo = ChunkRepository(batch, [s for pid, s in todo.items() if pid not in refused])
        prepare = self.bulk.prepare.get(self.step.name)
        oss = prepare(list(todo.values()), self.oss) if prepare else self.oss
        updates, failures = {}, {}
        for pid, state in todo.items():
            try:
                if pid in refused:
                    raise DuplicateNameError(refused[pid])
                updates[pid] = self.step(state, repository=repo, oss=oss)
            except PERMANENT_ERRORS as exc:  # the item's own failure; anything else fails the chunk (a retry)
                failures[pid] = exc
        try:
            with batch.conn.begin_nested():
                self._write(batch, todo, updates, failures, repo, started_at)
        except IntegrityError:  # one item's write broke a constraint: each item in its own savepoint
            for pid in todo:
                try:
                    with batch.conn.begin_nested():
                        self._write(batch, {pid: todo[pid]}, _only(updates, pid), _only(failures, pid), repo,
                                    started_at)
                except IntegrityError as exc:
                    refusal = StoreError(f"the store refused this item's write: {str(exc.orig).splitlines()[0]}")
                    with batch.conn.begin_nested():
                        self._write(batch, {pid: todo[pid]}, {}, {pid: refusal}, repo, started_at)

    def _write(self, batch: Batch, todo: dict[UUID, State], updates: dict[UUID, State],
               failures: dict[UUID, BaseException], repo: ChunkRepository, started_at: datetime) -> None:
        """Save the chunk's subscriptions, links, step rows and processes' progress (its items' failures too)."""
        failures = dict(failures)
        subs = {pid: u["subscription"] for pid, u in updates.items()
                if isinstance(u.get("subscription"), SubscriptionModel)}
        saved, refused = batch.save_subscriptions(list(subs.values()))
        saved = {s.subscription_id: s for s in saved}
        updates = dict(updates)
        for pid, sub in subs.items():
            if sub.subscription_id in refused:
                failures[pid] = StoreError(refused[sub.subscription_id])
            else:
                updates[pid] = {**updates[pid], "subscription": saved[sub.subscription_id]}
        ok = [pid for pid in updates if pid not in failures]
        ok_set = set(ok)
        target = self.bulk.workflow.target
        # From its first commit on, a subscription is its process's (as `run_step` links it).
        links = [(pid, subs[pid].subscription_id) for pid in ok if pid in subs and subs[pid].version == 0]
        links += [(pid, link[0]) for pid, link in repo.links.items() if pid in ok_set]
        batch.link(links, str(target))
        row = {"task_id": self.task_id, "map_index": -1, "try_number": self.try_number, "hostname": self.hostname,
               "started_at": started_at, "name": self.step.name}
        states = {pid: {**todo[pid], **to_jsonable_python(updates[pid])} for pid in ok}
        batch.running(ok, self.task_id)
        batch.complete([pid for pid in ok if pid in repo.completed])
        errors = {pid: (f"{type(exc).__name__}: {exc}", "".join(traceback.format_exception(exc))[-TRACEBACK_TAIL:])
                  for pid, exc in failures.items()}
        batch.record_steps([{**row, "process_id": pid, "status": "success", "state": states[pid], "error": None}
                            for pid in ok] +
                           [{**row, "process_id": pid, "status": "failed", "state": None, "error": f"{why}\n{tail}"}
                            for pid, (why, tail) in errors.items()])
        batch.fail([{"pid": pid, "last_step": self.task_id, "failed_reason": why, "traceback": tail}
                    for pid, (why, tail) in errors.items()])
        self.ran += len(ok)
        self.failed.update({pid: (todo[pid], why) for pid, (why, _) in errors.items()})


def bulk_task(bulk: Bulk, step: Step, task_id: str, index: int):
    """The TaskFlow task `task_id` of a bulk run: its step for every item. The first task reads the items from the
    run's params (refusing bad input before anything is written) and opens a process for each. A task fails,
    after committing what succeeded, if an item failed at it; clearing it runs only the items that did not
    complete it. The last task fails if any item did not complete, naming them."""
    workflow = bulk.workflow
    last = index == len(workflow.steps) - 1

    def body(*, params=None, dag_run=None, ti=None):  # no `-> dict`: that would split the XCom (multiple_outputs)
        store, oss = services(task_id)
        run = BatchStep(bulk, step, task_id, index, store=store, oss=oss, dag_run=dag_run, try_number=ti.try_number,
                        hostname=getattr(ti, "hostname", None))
        with stopped_by_sigterm(), stopping(store, dag_run):
            if index == 0:
                try:
                    if unknown := sorted(set(getattr(dag_run, "conf", None) or {}) - set(bulk.params)):
                        raise ValueError(f"{', '.join(map(repr, unknown))} not a parameter of {bulk.name} (its "
                                         f"parameters: {', '.join(bulk.params)})")
                    states, refused = item_states(bulk, dict(params or {}), dag_run)
                except ValueError as exc:  # nothing was written
                    raise AirflowFailException(f"Invalid input: {exc}") from None
                run.first(states, refused)
            else:
                run.next()
        if run.failed:
            raise AirflowFailException(f"{task_id}: {len(run.failed)} items failed: {_named(workflow, run.failed)}")
        summary = {"task_id": task_id, "ran": run.ran, "max_rss_mb": _max_rss_mb()}
        if last:
            with store.transaction() as repo:
                counts, unfinished = Batch(repo, dag_run.dag_id, dag_run.run_id).outcome()
            summary["processes"] = counts
            if unfinished:
                why = {u["process_id"]: (u["input_state"], f"at {u['last_step']}: {u['failed_reason']}")
                       for u in unfinished}
                raise AirflowFailException(f"{len(unfinished)} of {sum(counts.values())} items did not complete: "
                                           f"{_named(workflow, why)}")
        log.info("%s: %s", task_id, summary)
        return summary

    body.__name__ = body.__qualname__ = task_id
    body.__doc__ = step.description
    options = {**step.task_options, "execution_timeout": BULK_TIMEOUT}
    return task(task_id=task_id, task_display_name=step.description, trigger_rule="all_success" if index == 0
                else "all_done", **options)(body)


@contextmanager
def stopping(store: Store, dag_run: Any) -> Iterator[None]:
    """If Airflow stops the task (its run was marked failed), the run's processes it left running fail: those
    the run's end already settled were committed before, a chunk committed since would stay `running`."""
    try:
        yield
    except RunStopped as exc:
        try:
            with store.transaction() as repo:
                Batch(repo, dag_run.dag_id, dag_run.run_id).stop(f"RunStopped: {exc}")
        except Exception:  # the store itself may be away: `usergroup processes reconcile` settles them later
            log.exception("Could not fail the processes of stopped run %s", dag_run.run_id)
        raise


def item_states(bulk: Bulk, params: dict[str, Any], dag_run: Any) -> tuple[list[State], dict[UUID, str]]:
    """Each item's initial state (its own process id, from the run and its place), and why those that give a
    name an earlier item gave (ignoring case and look-alikes) are refused."""
    workflow = bulk.workflow
    customer_id = Variable.get(CUSTOMER_VARIABLE, default=DEFAULT_CUSTOMER_ID)
    unique = mapping_for(workflow.product_type).unique_name
    states, refused, first = [], {}, {}
    for n, fields in enumerate(bulk.items(params), start=1):
        state = {**initial_state(workflow, fields, dag_run, customer_id),
                 "process_id": str(process_id_for(dag_run.dag_id, dag_run.run_id, f"item-{n}"))}
        states.append(state)
        if unique is not None and isinstance(name := state.get(unique.field), str):
            key = (str(state.get(unique.scope_input)), name_key(name))
            if key in first:
                refused[UUID(state["process_id"])] = (f"{unique.field} {name!r} is given twice in this run: item "
                                                      f"{n} and item {first[key][0]} ({first[key][1]!r})")
            else:
                first[key] = (n, name)
    return states, refused


def _row(opening: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in opening.items() if k not in ("dag_id", "run_id")}


def _only(values: dict[UUID, Any], pid: UUID) -> dict[UUID, Any]:
    return {pid: values[pid]} if pid in values else {}


def _named(workflow: Any, failed: dict[UUID, tuple[State, str]]) -> str:
    """The items by their form's values (the name, for a create), each with why."""
    named = [f"{' '.join(repr(s.get(f)) for f in workflow.form.model_fields)} ({(why or '').splitlines()[0]})"
             for s, why in list(failed.values())[:NAMED]]
    more = f"; and {len(failed) - NAMED} more" if len(failed) > NAMED else ""
    return "; ".join(named) + more


def _max_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)

