"""subscription_events: another pipeline that reacts to subscription changes, scheduled on usergroup's Assets.

Every process that completes (a create, modify, terminate or validate of a User Group or a User) emits an asset
event on `usergroup://subscriptions/<product type>`; this DAG runs for them. A single run's event says what
changed in its extra (subscription_id, process_id, workflow, target, status, version, product_type,
completed_at); a bulk run's event lists its items under `subscriptions` (one event per chunk). Airflow may fold
several events into one run: handle them all, and dedupe on `process_id` (an event comes twice only if a worker
died in the instant between Airflow registering it and usergroup marking it announced).
"""

from airflow.sdk import Asset, dag, task

USER_GROUPS = Asset("usergroup://subscriptions/user_group")
USERS = Asset("usergroup://subscriptions/user")


@dag(schedule=USER_GROUPS | USERS, catchup=False, tags=["usergroup", "example"])
def subscription_events():
    @task
    def notify(*, triggering_asset_events=None) -> list[dict]:
        """Here: say what changed, one line per subscription. Yours: notify an owner, sync a directory, bill."""
        changes = []
        for asset_events in triggering_asset_events.values():
            for event in asset_events:
                shared = {k: v for k, v in event.extra.items() if k != "subscriptions"}
                for item in event.extra.get("subscriptions", [{}]):
                    change = {**shared, **item}
                    print(f"{change['workflow']}: subscription {change['subscription_id']} is {change['status']} "
                          f"(version {change['version']}, process {change['process_id']})")
                    changes.append(change)
        return changes

    notify()


subscription_events()
