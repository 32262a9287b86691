"""A workflow run for many subscriptions: one mapped task instance, one process, per subscription."""

from uuid import UUID

from airflow.sdk import task
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from usergroup.airflow.events import announce
from usergroup.airflow.services import services
from usergroup.airflow.tasks import airflow_errors, announcing, customer_id, initial_state, opening_of, run_step
from usergroup.engine.runner import stopped_by_sigterm
from usergroup.engine.workflow import Schedule, Workflow
from usergroup.store.errors import RefusedError

SELECT_TASK = "select_subscriptions"


def select_task(schedule: Schedule):
    """The task that picks the subscriptions: every active one of the workflow's product in sync."""
    product = schedule.workflow.product_type

    @task(task_id=SELECT_TASK, task_display_name=f"Select every active {product} in sync")
    def select_subscriptions() -> list[str]:
        store, _ = services(SELECT_TASK)
        with store.transaction() as repo:
            return [str(i) for i in repo.active_in_sync(product)]

    return select_subscriptions


def workflow_task(workflow: Workflow):
    """The task that runs `workflow` for one subscription (mapped over them): each of its steps as `run_step`
    runs a task of the workflow's own DAG, recorded under the step's task id, in a process of the run and the
    subscription (not of the instance's place in the selection, which a cleared run may shift). A retry
    resumes after the last step that committed. A subscription the rules refuse now (another process took or
    changed it since the selection) is skipped, with the reason (its process, if `unsync` refused it, is
    aborted)."""

    def body(subscription_id: str, *, dag_run=None, ti=None, outlet_events=None):
        state = initial_state(workflow, {"subscription_id": subscription_id}, dag_run, customer_id(),
                              per_subscription=True)
        store, oss = services(workflow.name)
        opening = {**opening_of(workflow, dag_run), "map_index": ti.map_index}  # the instance that opened it
        with stopped_by_sigterm():
            for index, (step, task_id) in enumerate(zip(workflow.steps, workflow.task_ids, strict=True)):
                try:
                    state = run_step(step, state, store=store, oss=oss, try_number=ti.try_number, task_id=task_id,
                                     start=opening if index == 0 else None,
                                     hostname=getattr(ti, "hostname", None),
                                     checks=workflow.checks if index == 0 else ())
                except AirflowFailException as exc:
                    if isinstance(exc.__cause__, RefusedError):  # at the check or `unsync`: nothing was changed
                        raise AirflowSkipException(f"subscription {subscription_id} not run: {exc}") from exc
                    raise
        with airflow_errors(workflow.name):
            announce(store, outlet_events, [UUID(state["process_id"])])
        return {"subscription_id": subscription_id, "process_id": state["process_id"]}

    body.__name__ = body.__qualname__ = workflow.name
    body.__doc__ = workflow.title
    return task(task_id=workflow.name, task_display_name=workflow.title, **_widest(workflow),
                **announcing(workflow))(body)


def _widest(workflow: Workflow) -> dict:
    """The task runs every step: it takes the most patient retry policy among them."""
    return max((s.task_options for s in workflow.steps), key=lambda o: o.get("retries", 0))
