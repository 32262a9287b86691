"""A workflow run for many items at once: each task runs its step for every item of the run, a chunk per
transaction, every item a process of its own with the trail a single run gives it."""

import gc
import logging
import resource
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

from airflow.sdk import task
from airflow.sdk.exceptions import AirflowFailException

from usergroup.airflow.events import announce
from usergroup.airflow.services import services
from usergroup.airflow.sources import read_source
from usergroup.airflow.tasks import airflow_errors, announcing, customer_id, initial_state, opening_of
from usergroup.domain.names import name_key
from usergroup.engine.process_id import process_id_for
from usergroup.engine.runner import NoItemsError, RunStopped, TaskTry, run_many, stopped_by_sigterm
from usergroup.engine.step import State, Step
from usergroup.engine.workflow import Bulk
from usergroup.settings import settings
from usergroup.store.mappings import mapping_for
from usergroup.store.repository import Store

log = logging.getLogger(__name__)

NAMED = 20  # failed items a task's error names; the rest are counted
ANNOUNCE_TASK = "announce"


def bulk_task(bulk: Bulk, step: Step, task_id: str, index: int):
    """The TaskFlow task `task_id` of a bulk run: its step for every item. The first task reads the items from the
    run's params (refusing bad input before anything is written) and opens a process for each. A task fails,
    after committing what succeeded, if an item failed at it; clearing it runs only the items that did not
    complete it. The last task fails if any item did not complete, naming them."""
    workflow = bulk.workflow
    last = index == len(workflow.steps) - 1

    def body(*, params=None, dag_run=None, ti=None):  # no `-> dict`: that would split the XCom (multiple_outputs)
        store, oss = services(task_id)
        run = TaskTry(step=step, task_id=task_id, workflow_target=str(workflow.target), try_number=ti.try_number,
                      hostname=getattr(ti, "hostname", None), dag_id=dag_run.dag_id, run_id=dag_run.run_id)
        prepare = bulk.prepare.get(step.name)
        with disposing(store):  # its connections closed now, not when the garbage collector finds them
            with stopped_by_sigterm(), stopping(store, dag_run), collecting_rarely():
                if index == 0:
                    try:
                        if unknown := sorted(set(getattr(dag_run, "conf", None) or {}) - set(bulk.params)):
                            raise ValueError(f"{', '.join(map(repr, unknown))} not a parameter of {bulk.name} (its "
                                             f"parameters: {', '.join(bulk.params)})")
                        states, refused = item_states(bulk, dict(params or {}), dag_run)
                    except ValueError as exc:  # nothing was written
                        raise AirflowFailException(f"Invalid input: {exc}") from None
                    ran, failed = run_many(run, store=store, oss=oss, opening=opening_of(workflow, dag_run),
                                           states=states, refused=refused, prepare=prepare)
                else:
                    try:
                        ran, failed = run_many(run, store=store, oss=oss, previous=workflow.task_ids[index - 1],
                                               prepare=prepare)
                    except NoItemsError:  # the first task refused the input (or never ran): the run has nothing
                        raise AirflowFailException(f"{task_id}: the run has no items: its first task, "
                                                   f"{workflow.task_ids[0]}, opened none (see its log)") from None
            if failed:
                raise AirflowFailException(f"{task_id}: {len(failed)} items failed: {_named(workflow, failed)}")
            summary = {"task_id": task_id, "ran": ran, "max_rss_mb": _max_rss_mb()}
            if last:
                with store.transaction() as repo:
                    counts, unfinished = repo.run_outcome(dag_run.dag_id, dag_run.run_id)
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
    options = {**step.task_options, "execution_timeout": settings().bulk_timeout}
    return task(task_id=task_id, task_display_name=step.description, trigger_rule="all_success" if index == 0
                else "all_done", **options)(body)


def announce_task(bulk: Bulk):
    """The task that announces the run's completed items, one asset event per chunk (`events`): a teardown after
    the last task, whatever that ended. Airflow registers a task's events only when it succeeds, and the last task
    fails when any item did not complete: the items that did are announced all the same, and the run's state
    stays the last task's."""

    def body(*, dag_run=None, outlet_events=None):
        store, _ = services(ANNOUNCE_TASK)
        with airflow_errors(ANNOUNCE_TASK):
            return {"announced": announce(store, outlet_events, run=(dag_run.dag_id, dag_run.run_id),
                                          chunk=settings().chunk_size)}

    body.__name__ = body.__qualname__ = ANNOUNCE_TASK
    return task(task_id=ANNOUNCE_TASK, task_display_name="Announce the completed subscriptions",
                execution_timeout=settings().bulk_timeout, **announcing(bulk.workflow))(body)


@contextmanager
def stopping(store: Store, dag_run: Any) -> Iterator[None]:
    """If Airflow stops the task (its run was marked failed), the run's processes it left running fail: those
    the run's end already settled were committed before, a chunk committed since would stay `running`."""
    try:
        yield
    except RunStopped as exc:
        try:
            with store.transaction() as repo:
                repo.stop_run(dag_run.dag_id, dag_run.run_id, f"RunStopped: {exc}")
        except Exception:  # the store itself may be away: `usergroup processes reconcile` settles them later
            log.exception("Could not fail the processes of stopped run %s", dag_run.run_id)
        raise


@contextmanager
def disposing(store: Store) -> Iterator[None]:
    try:
        yield
    finally:
        store.engine.dispose()


@contextmanager
def collecting_rarely() -> Iterator[None]:
    """A bulk task allocates millions of short-lived objects, freed by reference counting; the cyclic garbage
    collector, run every 700 allocations and now and then over everything alive, cost it a fifth of its CPU
    (`benchmarks/bulk_cost.py`). While it runs, the young generation holds 50,000 objects and a full collection
    waits far longer. The thresholds are restored after."""
    threshold = gc.get_threshold()
    gc.set_threshold(50_000, 20, 100)
    try:
        yield
    finally:
        gc.set_threshold(*threshold)


def item_states(bulk: Bulk, params: dict[str, Any], dag_run: Any) -> tuple[list[State], dict[UUID, str]]:
    """Each item's initial state (its own process id, from the run and its place), and why those that give a
    name an earlier item gave (ignoring case and look-alikes) are refused."""
    workflow = bulk.workflow
    customer = customer_id()
    unique = mapping_for(workflow.product_type).unique_name
    states, refused, first = [], {}, {}
    for n, fields in enumerate(bulk.items(params, read_source), start=1):
        state = {**initial_state(workflow, fields, dag_run, customer),
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


def _named(workflow: Any, failed: dict[UUID, tuple[State, str]]) -> str:
    """The items by their form's values (the name, for a create), each with why."""
    named = [f"{' '.join(repr(s.get(f)) for f in workflow.form.model_fields)} ({(why or '').splitlines()[0]})"
             for s, why in list(failed.values())[:NAMED]]
    more = f"; and {len(failed) - NAMED} more" if len(failed) > NAMED else ""
    return "; ".join(named) + more


def _max_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)

