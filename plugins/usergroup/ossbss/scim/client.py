"""ScimOssBss: the OSS/BSS client over SCIM 2.0. A User Group is a SCIM `Group` (`displayName` its name), a User a
SCIM `User` (`userName`, `userType` its affiliation, its age in our extension) and a member of its group's `Group`.

Each resource carries its subscription's id as `externalId`: a call asked again (a retry, a resume after a lost
commit) finds what the first one created instead of creating a second. A modify is a PATCH with the resource's ETag
(`If-Match`), so a change made between our read and our write is not overwritten (412, read again on the retry).
"""

import json
from collections.abc import Iterator
from functools import cached_property
from typing import Any
from uuid import UUID

import httpx
from scim2_models import (
    BulkOperation,
    BulkRequest,
    Group,
    PatchOp,
    PatchOperation,
    Resource,
    SearchRequest,
    ServiceProviderConfig,
)

from usergroup.domain.ossbss_id import ossbss_id
from usergroup.ossbss.errors import NotFoundError, PermanentError, TransientError
from usergroup.ossbss.scim.http import HttpxScimClient, error_status
from usergroup.ossbss.scim.models import ScimUser, UserGroupUser, provider

AGE = f"{UserGroupUser.__schema__}:age"
PAGE = 1000  # resources per page of a listing (scim2-server's maxResults)
LOOKUP = 50  # externalIds per search of a batch (`externalId eq "a" or externalId eq "b" ...`)
OPERATION_BYTES = 300  # a Bulk operation's JSON, but for its group name's


def _age(user: ScimUser) -> int | None:
    """The age in our extension (none: a User without it)."""
    return user[UserGroupUser].age if user[UserGroupUser] else None


def eq(attribute: str, value: object) -> str:
    """A filter's comparison, its value a SCIM (JSON) string: quotes and backslashes in it stay the value's."""
    return f"{attribute} eq {json.dumps(str(value))}"


class ScimOssBss:
    """The OSS/BSS at a SCIM endpoint (`base_url` its root, e.g. https://idm.example.org/scim/v2). The keyword
    arguments are httpx's (auth, headers, verify, cert, timeout); nothing is sent until a call."""

    def __init__(self, base_url: str, **http: Any):
        self.base_url, self._http = base_url, http

    @cached_property
    def scim(self) -> HttpxScimClient:
        return HttpxScimClient(httpx.Client(base_url=self.base_url, **self._http), provider=provider(),
                               raise_scim_errors=True)

    # User Group: a SCIM Group.
    def provision_user_group(self, subscription_id: UUID, group_name: str) -> int | str:
        group = self._find(Group, subscription_id)
        if group is None:
            group = self._create(Group(display_name=group_name, external_id=str(subscription_id)), group_name)
        return ossbss_id(group.id)

    def provision_user_groups(self, groups: dict[UUID, str]) -> dict[UUID, int | str | Exception]:
        """The batch call of a bulk run's chunk: the groups it holds already found by their externalIds (a few
        searches), the others created by SCIM Bulk requests (or one POST each where the server's
        ServiceProviderConfig says Bulk is off). An item the server refuses (409, 400) answers with its
        `PermanentError`; any other error of an item, or of a request, is raised for the batch (it is retried:
        what it created is found again)."""
        names = {UUID(str(sid)): name for sid, name in groups.items()}
        sids, answers = list(names), {}
        for at in range(0, len(sids), LOOKUP):  # every page of each search: a server may answer fewer a page
            ids = " or ".join(eq("externalId", sid) for sid in sids[at:at + LOOKUP])
            answers.update((UUID(g.external_id), ossbss_id(g.id)) for g in self._search(Group, ids))
        missing = {sid: name for sid, name in names.items() if sid not in answers}
        bulk = self.service_provider_config.bulk
        if not (bulk and bulk.supported):
            for sid, name in missing.items():
                try:
                    answers[sid] = ossbss_id(self._create(Group(display_name=name, external_id=str(sid)), name).id)
                except PermanentError as exc:
                    answers[sid] = exc
            return answers
        most, room = min(bulk.max_operations or 1000, 1000), bulk.max_payload_size or 1_048_576
        batch: dict[UUID, str] = {}
        size = 0
        for sid, name in missing.items():  # as many a request as the server takes, in count and in bytes
            cost = OPERATION_BYTES + len(json.dumps(name))  # its name escaped: the most it takes in the body
            if batch and (len(batch) == most or size + cost > room):
                answers.update(self._bulk_create(batch))
                batch, size = {}, 0
            batch[sid], size = name, size + cost
        if batch:
            answers.update(self._bulk_create(batch))
        return answers

    def _bulk_create(self, groups: dict[UUID, str]) -> dict[UUID, int | str | Exception]:
        operations = [BulkOperation[Group](method="POST", path="/Groups", bulk_id=str(sid),
                                           data=Group(display_name=name, external_id=str(sid)))
                      for sid, name in groups.items()]
        response = self.scim.bulk(BulkRequest[Group](operations=operations, fail_on_errors=len(operations)))
        answers: dict[UUID, int | str | Exception] = {}
        for op in response.operations or ():
            sid, status = UUID(op.bulk_id), int(op.status)
            if status < 300:
                answers[sid] = ossbss_id(op.location.rstrip("/").rsplit("/", 1)[-1])
                continue
            detail = getattr(op.response, "detail", None) or ""
            error = error_status(status, f"Group {groups[sid]!r} not provisioned: SCIM server answered {status} "
                                         f"to its Bulk operation" + (f": {detail}" if detail else ""))
            if not isinstance(error, PermanentError) or isinstance(error, NotFoundError):
                raise error
            answers[sid] = error
        if lost := set(groups) - set(answers):
            raise TransientError(f"the SCIM server's Bulk response left out {len(lost)} of {len(groups)} operations")
        return answers

    @cached_property
    def service_provider_config(self):
        return self.scim.query(ServiceProviderConfig)

    def rename_user_group(self, subscription_id: UUID, group_name: str) -> bool:
        group = self._get(Group, subscription_id, f"nothing to rename to {group_name!r}")
        if group.display_name == group_name:
            return False
        self._patch(group, ("replace", "displayName", group_name))
        return True

    def deprovision_user_group(self, subscription_id: UUID) -> bool:
        return self._delete(Group, subscription_id)

    def read_user_group(self, subscription_id: UUID) -> dict | None:
        group = self._find(Group, subscription_id)
        return None if group is None else {"group_id": ossbss_id(group.id), "group_name": group.display_name}

    # User: a SCIM User, a member of its group's Group.
    def provision_user(self, subscription_id: UUID, group_id: int | str, username: str, age: int | None,
                       affiliation: str | None = None) -> int | str:
        user = self._find(ScimUser, subscription_id)
        if user is None:
            new = ScimUser(user_name=username, user_type=affiliation, external_id=str(subscription_id))
            new[UserGroupUser] = UserGroupUser(age=age)
            user = self._create(new, username)
        member = SearchRequest(filter=f'{eq("id", group_id)} and {eq("members.value", user.id)}', count=1)
        if not self.scim.query(Group, query_parameters=member).total_results:
            try:
                self.scim.modify(Group, str(group_id), PatchOp[Group](operations=[
                    PatchOperation[Group](op="add", path="members", value=[{"value": user.id}])]))
            except NotFoundError as exc:
                raise NotFoundError(f"user {username!r} not added to group {group_id}: the SCIM server holds no such "
                                    f"group ({exc})") from exc
        return ossbss_id(user.id)

    def update_user(self, subscription_id: UUID, username: str, age: int | None) -> bool:
        user = self._get(ScimUser, subscription_id, f"nothing to update to {username!r}")
        if (user.user_name, _age(user)) == (username, age):
            return False
        self._patch(user, ("replace", "userName", username), ("replace", AGE, age))
        return True

    def read_user(self, subscription_id: UUID) -> dict | None:
        """The User and its membership: every Group whose members hold it."""
        user = self._find(ScimUser, subscription_id)
        if user is None:
            return None
        return {"user_id": ossbss_id(user.id), "username": user.user_name, "age": _age(user),
                "groups": [{"group_id": ossbss_id(g.id), "group_name": g.display_name}
                           for g in self._search(Group, eq("members.value", user.id))]}

    def deprovision_user(self, subscription_id: UUID) -> bool:
        user = self._find(ScimUser, subscription_id)
        if user is None:
            return False
        for group in list(self._search(Group, eq("members.value", user.id))):
            self.scim.modify(Group, group.id, PatchOp[Group](operations=[
                PatchOperation[Group](op="remove", path=f"members[{eq('value', user.id)}]")]))
        return self._delete(ScimUser, subscription_id, user)

    # What `usergroup ossbss list` and `drift` show and do.
    def groups(self) -> list[dict]:
        return [{"subscription_id": g.external_id, "group_id": ossbss_id(g.id), "group_name": g.display_name}
                for g in self._search(Group, "externalId pr")]

    def users(self) -> list[dict]:
        return [{"subscription_id": u.external_id, "user_id": ossbss_id(u.id), "username": u.user_name}
                for u in self._search(ScimUser, "externalId pr")]

    def drift(self, subscription_id: UUID, *, group_name: str | None = None, remove: bool = False) -> dict | None:
        """Change a group behind the store's back, as any other SCIM client could: rename it, or remove it."""
        if (group_name is None) == (not remove):
            raise ValueError("drift: give a new group_name or remove=True, not both")
        was = self.read_user_group(subscription_id)
        if was is None:
            raise NotFoundError(f"the SCIM server holds no group for subscription {subscription_id}")
        if remove:
            self.deprovision_user_group(subscription_id)
        else:
            self.rename_user_group(subscription_id, group_name)
        return was

    def _find(self, model: type[Resource], subscription_id: UUID) -> Any:
        found = self.scim.query(model, query_parameters=SearchRequest(
            filter=eq("externalId", UUID(str(subscription_id))), count=2))
        if found.total_results and found.total_results > 1:
            raise PermanentError(f"the SCIM server holds {found.total_results} {model.__name__}s with externalId "
                                 f"{subscription_id}: remove all but one")
        return found.resources[0] if found.resources else None

    def _get(self, model: type[Resource], subscription_id: UUID, otherwise: str) -> Any:
        if (resource := self._find(model, subscription_id)) is None:
            kind = "group" if model is Group else "user"
            raise NotFoundError(f"the SCIM server holds no {kind} for subscription {subscription_id}: {otherwise}")
        return resource

    def _create(self, resource: Resource, name: str) -> Any:
        try:
            return self.scim.create(resource)
        except PermanentError as exc:
            kind = "Group" if isinstance(resource, Group) else "User"
            raise type(exc)(f"{kind} {name!r} not provisioned: {exc}") from exc

    def _patch(self, resource: Resource, *changes: tuple[str, str, Any]) -> None:
        model = type(resource)
        self.scim.modify(resource, PatchOp[model](operations=[
            PatchOperation[model](op=op, path=path, value=value) for op, path, value in changes]),
            headers={"If-Match": resource.meta.version})

    def _delete(self, model: type[Resource], subscription_id: UUID, found: Any = None) -> bool:
        if (resource := found or self._find(model, subscription_id)) is None:
            return False
        try:
            self.scim.delete(model, resource.id)
        except NotFoundError:  # gone since we found it (our own delete, its answer lost): what we wanted
            pass
        return True

    def _search(self, model: type[Resource], scim_filter: str) -> Iterator[Any]:
        start = 1
        while True:
            page = self.scim.query(model, query_parameters=SearchRequest(filter=scim_filter, start_index=start,
                                                                         count=PAGE))
            yield from page.resources or ()
            start += len(page.resources or ())
            if not page.resources or start > (page.total_results or 0):
                return
