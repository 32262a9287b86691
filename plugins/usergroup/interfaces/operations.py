"""The operations layer: what may be done to a process or a subscription, decided once. The API, the
Subscriptions page and the CLI call these and only translate the outcome (an HTTP status and {"detail": reason},
a message on the page, exit code 1 and the reason on stderr). Airflow is reached through `Runs`, given to the
operations (`AirflowRuns` over usergroup.airflow.runs in production; tests give a fake)."""

from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Protocol
from uuid import UUID, uuid4

from pydantic_core import to_jsonable_python

from usergroup.airflow.tasks import initial_state
from usergroup.domain import ProcessStatus
from usergroup.engine.discovery import all_workflows, subscription_workflows
from usergroup.engine.input_step import InputForm
from usergroup.engine.process_id import process_id_for
from usergroup.engine.step import StepContext
from usergroup.engine.suspend import kept_answer
from usergroup.interfaces.form_pages import FormError, invalid, validate_answer, validate_pages, waiting_step
from usergroup.store.errors import StoreError
from usergroup.store.repository import Store


class OperationError(Exception):
    """Refused or failed, with the reason the user reads (the same in every interface)."""

    status = 500

    def __init__(self, reason: str, body: dict[str, Any] | None = None, status: int | None = None):
        super().__init__(reason)
        self.reason, self.body = reason, body
        if status is not None:
            self.status = status


class NotFound(OperationError):
    status = 404


class Conflict(OperationError):
    status = 409


class Invalid(OperationError):
    """A form not valid (400) or not complete (510, as orchestrator-core answers): `body` is the form error."""

    status = 400


class Unavailable(OperationError):
    status = 503


class Busy(Exception):
    """Raised by `Runs.clear_failed` when the run cannot be resumed now."""


class Runs(Protocol):
    def customer(self) -> str: ...
    def trigger(self, dag_id: str, run_id: str, conf: dict, user: str) -> None: ...
    def abort(self, store: Store, process: dict, reason: str) -> tuple[str, str | None]: ...
    def clear_failed(self, dag_id: str, run_id: str, map_index: int) -> None: ...
    def respond(self, process: dict, answer: InputForm, user: str) -> None: ...


class AirflowRuns:
    """The real `Runs`: Airflow's DAG runs (imported when used: the CLI's `--help` stays fast)."""

    def customer(self) -> str:
        from airflow.models.variable import Variable

        from usergroup.settings import Settings, settings

        return Variable.get(Settings.customer_variable, default_var=str(settings().default_customer_id))

    def trigger(self, dag_id: str, run_id: str, conf: dict, user: str) -> None:
        from airflow.api.common.trigger_dag import trigger_dag
        from airflow.sdk.exceptions import ParamValidationError
        from airflow.utils.types import DagRunTriggeredByType

        try:
            trigger_dag(dag_id, run_id=run_id, conf=conf, triggered_by=DagRunTriggeredByType.REST_API,
                        triggering_user_name=user)
        except ParamValidationError as exc:
            raise ValueError(str(exc)) from None

    def abort(self, store: Store, process: dict, reason: str) -> tuple[str, str | None]:
        from usergroup.airflow.runs import abort

        return abort(store, process, reason)

    def clear_failed(self, dag_id: str, run_id: str, map_index: int) -> None:
        from usergroup.airflow.runs import RunBusyError, clear_failed_tasks

        try:
            clear_failed_tasks(dag_id, run_id, map_index)
        except RunBusyError as exc:
            raise Busy(str(exc)) from None

    def respond(self, process: dict, answer: InputForm, user: str) -> None:
        from usergroup.airflow.answers import respond
        from usergroup.airflow.runs import RunBusyError

        fields = answer.model_dump(mode="json")
        chosen = fields.pop(answer.option_field)
        try:
            respond(process["dag_id"], process["run_id"], process["last_step"], process["map_index"], [chosen],
                    fields, user, user)
        except RunBusyError as exc:
            raise Busy(str(exc)) from None


Allow = Callable[[str], None]  # raises if the user may not run this DAG (the interface's own permission check)


def _allowed(dag_id: str) -> None:
    return None


@dataclass
class Operations:
    store: Store
    runs: Runs

    def _process(self, process_id: UUID | str, lock: bool = False, repo=None) -> dict:
        if repo is not None:
            process = repo.get_process(process_id, lock=lock)
        else:
            with self.store.transaction() as r:
                process = r.get_process(process_id)
        if process is None:
            raise NotFound(f"no process {process_id}")
        return process

    def start(self, workflow_key: str, pages: Any, user: str, allow: Allow = _allowed) -> UUID:
        """Validate the pages as the DAG's first task would, run its input checks, open the process and trigger
        its run. A refusal changes nothing."""
        workflow = all_workflows().get(workflow_key)
        if workflow is None:
            raise NotFound(f"no workflow {workflow_key!r} (one of: {', '.join(sorted(all_workflows()))})")
        allow(workflow.name)
        try:
            conf = validate_pages(workflow, pages)
        except FormError as exc:
            raise Invalid(exc.body.get("detail") or exc.body.get("title", ""), exc.body, exc.status) from None
        run_id = f"api__{uuid4()}"
        state = initial_state(workflow, conf, SimpleNamespace(dag_id=workflow.name, run_id=run_id),
                              self.runs.customer())
        self._checks(workflow, state)
        process_id = process_id_for(workflow.name, run_id)
        with self.store.transaction() as repo:
            repo.start_process(process_id, workflow_name=workflow.name, workflow_target=str(workflow.target),
                               dag_id=workflow.name, run_id=run_id, created_by=f"manual:{user}", input_state=state)
        try:
            self.runs.trigger(workflow.name, run_id, conf, user)
        except Exception as exc:  # nothing runs: the process says why, and the user gets the reason
            with self.store.transaction() as repo:
                repo.abort_process(process_id, f"its DAG run could not be created: {type(exc).__name__}: {exc}")
            if isinstance(exc, ValueError):
                body = invalid([{"loc": [], "msg": str(exc), "type": "value_error"}])
                raise Invalid(body["detail"], body) from None
            raise Unavailable(f"{workflow.name} could not be triggered: {type(exc).__name__}: {exc}") from None
        return process_id

    def _checks(self, workflow, state: dict) -> None:
        """The workflow's input checks (the subscription exists, is of its product and may run it now; a name is
        free) as its first task runs them, changing nothing: what they refuse is Invalid, and no run starts."""
        try:
            with self.store.rolled_back() as repo:
                for check in workflow.checks:
                    state = {**state, **to_jsonable_python(check(state, StepContext(store=repo)))}
        except (StoreError, ValueError) as exc:
            body = invalid([{"loc": [], "msg": str(exc), "type": "value_error"}])
            raise Invalid(body["detail"], body) from None

    def resume(self, process_id: UUID | str, allow: Allow = _allowed, pages: Any = None, user: str = "") -> None:
        """A suspended process: its answer (`pages`: the form of the step it waits at, as orchestrator-core's resume
        takes it) goes to its waiting task. A failed one: clear the failed task of its run, the run goes on from
        there. The process row is locked meanwhile: of concurrent resumes one goes through, the others find it
        running (409)."""
        with self.store.transaction() as repo:
            process = self._process(process_id, lock=True, repo=repo)
            allow(process["dag_id"])
            if process["status"] == ProcessStatus.SUSPENDED:
                return self._answer(repo, process, pages, user)
            if pages not in (None, [], [{}]):  # an answer: to a process that no longer waits, it is refused
                raise Conflict(f"process {process_id} is {process['status']}: it waits for no answer (a failed "
                               "process is resumed with [{}])")
            if process["status"] != ProcessStatus.FAILED:
                raise Conflict(f"process {process_id} is {process['status']}: only a failed process can be resumed "
                               "(or a suspended one, with its answer)")
            try:
                self.runs.clear_failed(process["dag_id"], process["run_id"], process["map_index"])
            except Busy as exc:
                raise Conflict(f"process {process_id} cannot be resumed now: {exc}") from None
            repo.resume_process(UUID(str(process_id)))

    def _answer(self, repo, process: dict, pages: Any, user: str) -> None:
        try:
            answer = validate_answer(waiting_step(process).form, pages)
        except FormError as exc:
            raise Invalid(exc.body.get("detail") or exc.body.get("title", ""), exc.body, exc.status) from None
        try:
            self.runs.respond(process, answer, user)
        except Busy as exc:
            raise Conflict(f"process {process['process_id']} cannot take an answer now: {exc}") from None
        repo.resume_process(process["process_id"], kept_answer(process["last_step"], process["map_index"], answer,
                                                               user))

    def abort(self, process_id: UUID | str, reason: str, allow: Allow = _allowed) -> str:
        """Abort an unfinished process (its run is stopped first); one already aborted or completed is refused.
        Returns what was done; Unavailable if Airflow could not be reached (the process is aborted still)."""
        process = self._process(process_id)
        allow(process["dag_id"])
        if process["status"] in (ProcessStatus.COMPLETED, ProcessStatus.ABORTED):
            raise Conflict(f"process {process_id} is {process['status']}: only an unfinished process can be aborted")
        done, airflow_error = self.runs.abort(self.store, process, reason)
        if airflow_error:
            raise Unavailable(f"process {process_id} is aborted, but its Airflow run {process['run_id']} of "
                              f"{process['dag_id']} could not be marked failed ({airflow_error}): mark it failed in "
                              "Airflow (no step of the process runs any more)")
        return done

    def set_in_sync(self, subscription_id: UUID | str):
        """The operator's recovery: refused while a process holds the subscription. Returns (subscription,
        changed)."""
        try:
            with self.store.transaction() as repo:
                if repo.get_subscription(subscription_id) is None:
                    raise NotFound(f"no subscription {subscription_id}")
                return repo.set_in_sync(UUID(str(subscription_id)))
        except StoreError as exc:
            raise Conflict(str(exc)) from None

    def workflows_for(self, subscription_id: UUID | str) -> dict:
        with self.store.transaction() as repo:
            sub = repo.get_subscription(subscription_id)
            if sub is None:
                raise NotFound(f"no subscription {subscription_id}")
            return subscription_workflows(repo, sub)
