"""Subscription events as Airflow Assets: each completed process announced on `usergroup://subscriptions/<product>`.

The process writes its event in the transaction that completes it (the store's outbox). The task that completed
it adds it to its outlet events through the product's asset alias, so Airflow registers it when the task succeeds
(a DAG scheduled on the asset runs for it); once Airflow has taken it, the task's success callback marks it
announced. A retry of that task announces what no earlier try got registered, and nothing twice; a task cleared
after its success announces nothing again. A process that failed or was aborted never completed: it announces
nothing. A kill between Airflow's registration and the mark is the one case an event comes twice (consumers
dedupe on `process_id`).
"""

import logging
import re
from typing import Any
from uuid import UUID

from airflow.sdk import Asset, AssetAlias

from usergroup.airflow.services import services
from usergroup.store.repository import Store

log = logging.getLogger(__name__)

SCHEME = "usergroup://subscriptions/"
SHARED = ("workflow", "target", "product_type")  # what a bulk run's chunk says once for its items


def _snake(product_type: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", product_type).lower()


def asset(product_type: str) -> Asset:
    """The asset of a product type's subscriptions, e.g. `usergroup://subscriptions/user_group`."""
    return Asset(f"{SCHEME}{_snake(product_type)}")


def alias(product_type: str) -> AssetAlias:
    """The alias the completing task emits through: only a try that completed or owes an event emits one."""
    return AssetAlias(f"usergroup_subscriptions_{_snake(product_type)}")


def event_extra(event: dict[str, Any]) -> dict[str, Any]:
    """What a process's event says: its subscription as the process left it, and the process."""
    return {"subscription_id": str(event["subscription_id"]), "process_id": str(event["process_id"]),
            "workflow": event["workflow_name"], "target": event["workflow_target"], "status": event["status"],
            "version": event["version"], "product_type": event["product_type"],
            "completed_at": event["completed_at"].isoformat()}


def announce(store: Store, outlet_events: Any, process_ids: list[UUID] = (), run: tuple[str, str] | None = None,
             chunk: int | None = None) -> int:
    """Add the events the processes (or the run's processes) owe to the task's outlet events: one per process,
    or (`chunk`) one per chunk of that many, listing its items under `subscriptions` beside the workflow and
    target they share. How many processes they announce (none where there are no outlet events: a body called
    outside Airflow)."""
    if outlet_events is None:
        return 0
    with store.transaction() as repo:
        events = repo.unannounced(process_ids, run)
    parts = [[e] for e in events] if chunk is None else [events[i:i + chunk] for i in range(0, len(events), chunk)]
    for part in parts:
        extras = [event_extra(e) for e in part]
        extra = extras[0] if chunk is None else {
            **{k: extras[0][k] for k in SHARED}, "count": len(part),
            "subscriptions": [{k: v for k, v in e.items() if k not in SHARED} for e in extras]}
        product_type = part[0]["product_type"]
        outlet_events[alias(product_type)].add(asset(product_type), extra=extra)
    return len(events)


def announced(outlet_events: Any, product_type: str) -> list[UUID]:
    """The processes whose events the task's outlet events hold."""
    return [UUID(s["process_id"]) for added in outlet_events[alias(product_type)].asset_alias_events
            for s in added.extra.get("subscriptions", [added.extra])]


def mark_announced(product_type: str, context: Any) -> None:
    """The completing task's success callback (given its product type): Airflow has registered its asset events;
    mark them announced. Never raises (a failure here means a later clear may announce them again, not that they
    are lost)."""
    if not (ids := announced(context["outlet_events"], product_type)):
        return
    try:
        store, _ = services(context["ti"].task_id)
        with store.transaction() as repo:
            repo.announce(ids)
    except Exception:
        log.exception("usergroup: could not mark the events of %d processes announced", len(ids))
