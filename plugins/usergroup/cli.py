"""The `usergroup` command: upgrade the store, list and show subscriptions."""

import argparse
import json
import logging
import sys
from uuid import UUID

from usergroup.report import subscription_json


def quiet_hook():
    """The hook, with Airflow's log lines sent to stderr."""
    from airflow.sdk.log import configure_logging  # imports Airflow: keep `--help` fast

    from usergroup.hook import UserGroupHook

    configure_logging(output=sys.__stderr__)  # stdout is for the result (`--json` must parse)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    return UserGroupHook()


def db_upgrade(args) -> int:
    from usergroup.store.migrate import upgrade

    hook = quiet_hook()
    revision = upgrade(hook.engine)
    url, db_schema = hook.url_and_schema
    print(f"usergroup store {url.render_as_string(hide_password=True)} (schema {db_schema}) is at revision {revision}")
    return 0


def subscriptions_list(args) -> int:
    with quiet_hook().store.transaction() as repo:
        subs = repo.list_subscriptions()
        if args.json:
            print(json.dumps([subscription_json(repo, s) for s in subs], indent=2, ensure_ascii=False))
            return 0
    print(f"{'subscription_id':36}  {'status':12}  {'insync':6}  {'group_id':>10}  group_name")
    for s in subs:
        g = s.user_group
        print(f"{s.subscription_id!s:36}  {s.status:12}  {s.insync!s:6}  {g.group_id or '':>10}  {g.group_name or ''}")
    return 0


def subscriptions_show(args) -> int:
    with quiet_hook().store.transaction() as repo:
        sub = repo.get_subscription(args.id)
        if sub is None:
            print(f"usergroup: no subscription {args.id}", file=sys.stderr)
            return 1
        view = subscription_json(repo, sub)
    if args.json:
        print(json.dumps(view, indent=2, ensure_ascii=False))
        return 0
    for key in ("subscription_id", "product", "customer_id", "description", "status", "insync", "start_date",
                "end_date", "note", "version"):
        print(f"{key:16} {view[key]}")
    for key, value in view["user_group"].items():
        print(f"{key:16} {value}")
    for p in view["processes"]:
        steps = ", ".join(f"{s['name']}:{s['status']}" for s in p["steps"])
        print(f"process          {p['process_id']} {p['workflow_target']} {p['status']} [{steps}]")
    return 0


def _uuid(value: str) -> str:
    try:
        return str(UUID(value))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a subscription id (a UUID)") from None


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="usergroup", description="The User Group subscription store.")
    groups = p.add_subparsers(dest="group", required=True)
    db = groups.add_parser("db", help="the store's schema").add_subparsers(dest="command", required=True)
    db.add_parser("upgrade", help="create or upgrade the store's schema").set_defaults(func=db_upgrade)
    subs = groups.add_parser("subscriptions", help="User Group subscriptions").add_subparsers(
        dest="command", required=True)
    ls = subs.add_parser("list", help="all subscriptions")
    ls.add_argument("--json", action="store_true", help="an array of subscription objects")
    ls.set_defaults(func=subscriptions_list)
    show = subs.add_parser("show", help="one subscription with its processes")
    show.add_argument("id", type=_uuid, help="the subscription id")
    show.add_argument("--json", action="store_true", help="one subscription object")
    show.set_defaults(func=subscriptions_show)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except Exception as exc:  # a clear one-line error, not a traceback, for what the user can fix
        print(f"usergroup: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
