"""The trail follows Airflow's run: when a run ends and its process has not completed, the process says why."""

from dataclasses import dataclass
from typing import Any

from usergroup.domain import ProcessStatus
from usergroup.engine.process_id import process_id_for
from usergroup.engine.workflow import Bulk, Schedule, Workflow
from usergroup.store.processes import LIVE
from usergroup.store.repository import Repository


@dataclass(frozen=True)
class EndedRun:
    """What Airflow knows of a run that ended: its state and the first task's last try."""

    dag_id: str
    run_id: str
    state: str  # "success" or "failed"
    conf: dict[str, Any]
    created_by: str
    first_task_state: str | None
    first_task_exhausted: bool  # the first task failed after all its tries (not a refusal: that fails at once)
    msg: str = ""


def settle(repo: Repository, declared: Workflow | Schedule | Bulk, run: EndedRun) -> str | None:
    """Bring the process of an ended run in line with it; returns what was changed, or None.

    - a run that ended while its process was `created` or `running` (failed, marked failed or success by hand,
      stopped between tasks): the process becomes `failed` (a failed run: clear to resume) or `aborted` (a
      run that succeeded without its process completing: its tasks were marked by hand);
    - a failed run with no process, whose first task failed after all its tries (the store was out of reach):
      the process is created `failed`, so the operator sees it and can resume it by clearing.
    A refused input (the first task fails at once) leaves no process, as before. A scheduled run holds a
    process per subscription, a bulk run one per item: each one that had not completed follows the run."""
    if isinstance(declared, Schedule | Bulk):  # those that follow the run: created or running (not thousands done)
        said = [_follow(repo, p, run) for status in LIVE
                for p in repo.list_processes(dag_id=run.dag_id, run_id=run.run_id, status=str(status))]
        return "; ".join(s for s in said if s) or None
    workflow = declared
    process_id = process_id_for(run.dag_id, run.run_id)
    process = repo.get_process(process_id)
    if process is None:
        if run.state != "failed" or not run.first_task_exhausted:
            return None
        repo.start_process(process_id, workflow_name=workflow.name, workflow_target=str(workflow.target),
                           dag_id=run.dag_id, run_id=run.run_id, created_by=run.created_by, input_state=run.conf)
        reason = (f"the DAG run failed before its first step reached the store (the store was out of reach): "
                  f"{run.msg}").rstrip(": ")
        repo.fail_process(process_id, ProcessStatus.FAILED, last_step=workflow.task_ids[0], failed_reason=reason)
        return f"process {process_id} recorded as failed: {reason}"
    return _follow(repo, process, run)


def _follow(repo: Repository, process: dict[str, Any], run: EndedRun) -> str | None:
    if process["status"] not in LIVE:
        return None
    if run.state == "failed":
        status, reason = ProcessStatus.FAILED, f"the DAG run failed at {process['last_step']}: {run.msg}"
    else:
        status, reason = ProcessStatus.ABORTED, (f"the DAG run ended {run.state} at {process['last_step']} before "
                                                 f"the process completed (tasks marked by hand): {run.msg}")
    reason = reason.rstrip(": ")
    repo.fail_process(process["process_id"], status, last_step=process["last_step"], failed_reason=reason)
    return f"process {process['process_id']} is {status}: {reason}"
