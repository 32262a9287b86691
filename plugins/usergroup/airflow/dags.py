"""Render a workflow declaration as an Airflow DAG: one task per step, chained, its form as the params."""

from datetime import UTC, datetime

from airflow.sdk import DAG, Param, dag

from usergroup.airflow.bulk import announce_task, bulk_task
from usergroup.airflow.input_task import InputTask
from usergroup.airflow.schedule import select_task, workflow_task
from usergroup.airflow.tasks import step_task
from usergroup.engine.input_step import InputStep
from usergroup.engine.workflow import Bulk, Schedule, Workflow
from usergroup.settings import settings

SCHEDULES_START = datetime(2026, 1, 1, tzinfo=UTC)


def workflow_dag(workflow: Workflow) -> DAG:
    # A run that waits for an operator stays running for days: such a workflow takes many runs at once.
    asks = any(isinstance(s, InputStep) for s in workflow.steps)

    @dag(dag_id=workflow.name, schedule=None, catchup=False, doc_md=workflow.description, tags=list(workflow.tags),
         default_args=settings().task_defaults, **({"max_active_runs": settings().asking_max_active_runs} if asks
                                                   else {}),
         params={name: Param(**schema) for name, schema in workflow.params.items()})
    def render():
        state = None
        for index, (step, task_id) in enumerate(zip(workflow.steps, workflow.task_ids, strict=True)):
            if isinstance(step, InputStep):  # human-in-the-loop: it takes the state its upstream task returned
                asking = InputTask(step=step, workflow=workflow, upstream=state.operator.task_id, task_id=task_id)
                state >> asking
                state = asking.output
                continue
            task = step_task(step, workflow, task_id=task_id, first=index == 0)
            state = task() if index == 0 else task(state)

    return render()


def schedule_dag(schedule: Schedule) -> DAG:
    """`select_subscriptions` >> the workflow, mapped over them; one run at a time."""

    @dag(dag_id=schedule.name, schedule=schedule.schedule, start_date=SCHEDULES_START, catchup=False,
         max_active_runs=1, doc_md=schedule.description, tags=list(schedule.tags),
         default_args=settings().task_defaults)
    def render():
        workflow_task(schedule.workflow).expand(subscription_id=select_task(schedule)())

    return render()


def bulk_dag(bulk: Bulk) -> DAG:
    """The workflow's tasks, each for every item of the run; a task runs after its upstream task has ended (an
    item that failed there does not hold the others back)."""

    @dag(dag_id=bulk.name, schedule=None, catchup=False, doc_md=bulk.description, tags=list(bulk.tags),
         default_args=settings().task_defaults, params={name: Param(**schema) for name, schema in bulk.params.items()})
    def render():
        previous = None
        for index, (step, task_id) in enumerate(zip(bulk.workflow.steps, bulk.workflow.task_ids, strict=True)):
            current = bulk_task(bulk, step, task_id, index)()
            if previous is not None:
                previous >> current
            previous = current
        previous >> announce_task(bulk)().as_teardown()

    return render()
