"""The OSS/BSS client interface the steps call, its retry policy, and the batch provisioning of a bulk run."""

from typing import Protocol
from uuid import UUID

from usergroup.ossbss.errors import PermanentError
from usergroup.settings import settings

OSSBSS_RETRIES = settings().ossbss_task_options  # the task options of the steps that call the OSS/BSS


class OssBssClient(Protocol):
    """What the steps ask of the OSS/BSS. Every call raises `TransientError` when the OSS/BSS did not answer and
    `PermanentError` when it answered no (`usergroup.ossbss.errors`).

    Optional, for what a client offers beyond this: `provision_user_groups(groups: dict[UUID, str]) -> dict[UUID,
    int | Exception]`, the batch call (one answer per subscription; `provision_many` falls back to one call per
    group); `upgrade() -> str`, for a client that keeps tables of its own (`usergroup db upgrade` runs it);
    `groups()` and `drift(...)`, what `usergroup ossbss list` and `drift` show and do."""

    def provision_user_group(self, subscription_id: UUID, group_name: str) -> int | str:
        """Create (or find) the group for this subscription; return its id (`usergroup.domain.ossbss_id`).
        Must be idempotent."""

    def rename_user_group(self, subscription_id: UUID, group_name: str) -> bool:
        """Give the subscription's group this name; False if it had it already. Idempotent."""

    def deprovision_user_group(self, subscription_id: UUID) -> bool:
        """Remove whatever group the OSS/BSS holds for this subscription; False if it held none. Idempotent."""

    def read_user_group(self, subscription_id: UUID) -> dict | None:
        """The group the OSS/BSS holds for this subscription ({group_id, group_name}), or None."""

    def provision_user(self, subscription_id: UUID, group_id: int | str, username: str, age: int | None,
                       affiliation: str | None = None) -> int | str:
        """Create (or find) the user for this subscription in the group; return its user id. Idempotent."""

    def update_user(self, subscription_id: UUID, username: str, age: int | None) -> bool:
        """Give the subscription's user this username and age; False if it had them already. Idempotent."""

    def deprovision_user(self, subscription_id: UUID) -> bool:
        """Remove whatever user the OSS/BSS holds for this subscription; False if it held none. Idempotent."""

    def read_user(self, subscription_id: UUID) -> dict | None:
        """The user the OSS/BSS holds for this subscription ({user_id, username, age, groups}: `groups` the
        {group_id, group_name} of each group it is a member of), or None."""


def provision_many(oss: OssBssClient, groups: dict[UUID, str]) -> dict[UUID, int | str | Exception]:
    """Provision many groups: the client's batch call if it has one, else one call per group. An item's refusal
    (a `PermanentError`) is its answer; any other error (the OSS/BSS is away) is raised, for the whole batch."""
    if batch := getattr(oss, "provision_user_groups", None):
        return batch(groups)
    answers: dict[UUID, int | str | Exception] = {}
    for sid, name in groups.items():
        try:
            answers[UUID(str(sid))] = oss.provision_user_group(sid, name)
        except PermanentError as exc:
            answers[UUID(str(sid))] = exc
    return answers


class Answered:
    """The OSS/BSS as a step of a bulk run's chunk sees it: the provisioning asked for the whole chunk at once
    (`provision_many`) answers each item's call; any other call, or one it has no answer for, goes through."""

    def __init__(self, oss: OssBssClient, answers: dict[UUID, int | str | Exception]):
        self._oss, self._answers = oss, answers

    def provision_user_group(self, subscription_id: UUID, group_name: str) -> int:
        answer = self._answers.get(UUID(str(subscription_id)))
        if answer is None:
            return self._oss.provision_user_group(subscription_id, group_name)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def __getattr__(self, name: str):
        return getattr(self._oss, name)
