"""The in-sync lock: a workflow takes a subscription out of sync, one process at a time, and what holds it."""

from typing import Any
from uuid import UUID

from sqlalchemy import Connection, select, update

from usergroup.domain import SubscriptionLifecycle, SubscriptionModel, Target
from usergroup.domain.rules import WORKFLOW_LIFECYCLES, in_use_message, out_of_sync
from usergroup.store.errors import OutOfSyncError, RefusedError, StoreError
from usergroup.store.processes import UNFINISHED, describe
from usergroup.store.tables import (
    subscriptions,
)


class InSyncLock:
    conn: Connection

    def lock_in_sync(self, subscription_id: UUID | str, product_type: str) -> SubscriptionModel:
        """The subscription, if it is an active `product_type` in sync, locked until this transaction ends against
        a workflow taking it (its `unsync` waits, then sees what this transaction did: a block now referring to
        it). Otherwise RefusedError saying why."""
        sid = UUID(str(subscription_id))
        found = self.conn.execute(select(subscriptions.c.subscription_id).where(subscriptions.c.subscription_id == sid)
                                  .with_for_update(read=True)).first()
        sub = self.get_subscription(sid) if found else None
        if sub is None or sub.product.product_type != product_type:
            raise RefusedError(f"no {product_type} subscription {sid}" if sub is None else
                               f"subscription {sid} is a {sub.product.name}, not a {product_type}")
        if sub.status != SubscriptionLifecycle.ACTIVE:
            raise RefusedError(f"subscription {sid} is {sub.status}: only an active {sub.product.name} can be used")
        if not sub.insync:
            raise OutOfSyncError(out_of_sync(sid, self.holders(sid)))
        return sub

    def unsync(self, subscription_id: UUID, process_id: UUID, target: Target,
               seen_version: int | None = None) -> SubscriptionModel:
        """Take the in-sync lock for a workflow of `target`: one conditional UPDATE (in sync, in a lifecycle state
        the target may start from and, if given, still at the version the process's first task checked), so of
        any number of concurrent callers exactly one wins, and a workflow never acts on a subscription another
        one has changed since it looked (e.g. terminated, renamed). A loser learns which process holds it or
        changed it.

        A terminate also takes a subscription left `initial` or `provisioning` by a create that failed or was
        aborted (out of sync, held by that dead create): the create is aborted, so clearing it runs nothing;
        of concurrent takers the first one wins."""
        allowed = [str(s) for s in WORKFLOW_LIFECYCLES[target]]
        unchanged = [] if seen_version is None else [subscriptions.c.version == seen_version]
        taken = self.conn.execute(
            update(subscriptions)
            .where(subscriptions.c.subscription_id == subscription_id, subscriptions.c.insync.is_(True),
                   subscriptions.c.status.in_(allowed), *unchanged)
            .values(insync=False, version=subscriptions.c.version + 1)
        ).rowcount
        if taken:
            if target == Target.TERMINATE and (users := self.in_use_by(subscription_id)):
                raise RefusedError(in_use_message(subscription_id, users))  # rolls the unsync back
            return self.get_subscription(subscription_id)
        sub = self.get_subscription(subscription_id)
        if sub is None:
            raise StoreError(f"no subscription {subscription_id}")
        if target == Target.TERMINATE and (create := self.failed_create(sub, exclude=process_id)) is not None:
            if self._bump(sub):
                self.abort_process(create["process_id"], f"given up: its subscription is terminated by process "
                                                         f"{process_id}")
                return self.get_subscription(subscription_id)
        elif sub.insync and sub.status not in allowed:
            raise RefusedError(f"subscription {subscription_id} is {sub.status}: a {target} workflow needs it "
                               f"{' or '.join(allowed)}")
        elif sub.insync:
            others = [p for p in self.processes_of(subscription_id) if p["process_id"] != process_id]
            changer = ([p for p in others if self.completed_step(p["process_id"], "unsync")] or others)[-1:]
            since = f" (version {seen_version} then, {sub.version} now)" if seen_version is not None else ""
            raise RefusedError(f"subscription {subscription_id} changed since this process checked it{since}, last "
                               f"by process {', '.join(map(describe, changer)) or 'unknown'}: trigger again to act "
                               "on it as it is now")
        raise OutOfSyncError(out_of_sync(subscription_id, self.holders(subscription_id, exclude=process_id)))

    def set_in_sync(self, subscription_id: UUID) -> tuple[SubscriptionModel, bool]:
        """The operator's recovery: refused while a linked process is failed or running (it holds the lock).
        Returns the subscription and whether it changed (one already in sync is left as it is)."""
        sub = self.get_subscription(subscription_id)
        if sub is None:
            raise StoreError(f"no subscription {subscription_id}")
        holders = self.unfinished_processes(subscription_id)
        if holders:
            names = ", ".join(describe(p) for p in holders)
            raise OutOfSyncError(f"subscription {subscription_id} stays out of sync: process {names} has not "
                                 "completed; resume it (clear its failed task) or abort it first")
        if sub.status in (SubscriptionLifecycle.INITIAL, SubscriptionLifecycle.PROVISIONING):
            raise StoreError(f"subscription {subscription_id} is {sub.status}: its create did not complete, so it "
                             "cannot be set in sync; resume the create, or clean it up with its terminate workflow "
                             "(`usergroup subscriptions workflows ID` names it)")
        changed = self.conn.execute(
            update(subscriptions)
            .where(subscriptions.c.subscription_id == subscription_id, subscriptions.c.insync.is_(False))
            .values(insync=True, version=subscriptions.c.version + 1)).rowcount
        return self.get_subscription(subscription_id), bool(changed)

    def unfinished_processes(self, subscription_id: UUID, exclude: UUID | None = None) -> list[dict[str, Any]]:
        return [p for p in self.processes_of(subscription_id)
                if p["status"] in UNFINISHED and p["process_id"] != exclude]

    def holders(self, subscription_id: UUID, exclude: UUID | None = None) -> list[str]:
        """The unfinished processes holding the subscription (those past their `unsync`, else any), described."""
        holders = self.unfinished_processes(subscription_id, exclude=exclude)
        holders = [p for p in holders if self.completed_step(p["process_id"], "unsync")] or holders
        return [describe(p) for p in holders]

    def refusal_context(self, sub: SubscriptionModel) -> dict[str, Any]:
        """What the workflow rules (`domain.rules.refusal`) need to know of `sub` beyond the subscription itself."""
        return {"holders": self.holders(sub.subscription_id) if not sub.insync else [],
                "failed_create": self.failed_create(sub) is not None, "in_use_by": self.in_use_by(sub.subscription_id)}

