"""The `usergroup` command: upgrade the store (and the OSS/BSS client's tables); list and show subscriptions, their
workflows and processes; recover; the OSS/BSS's groups (of a client that lists them: the fake)."""

import argparse
import json
import logging
import sys
from typing import Any
from uuid import UUID

from usergroup.domain import ProcessStatus
from usergroup.interfaces.views import SUBSCRIPTION_COLUMNS, process_record, subscription_record


def quiet_hook():
    """The hook, with Airflow's log lines sent to stderr."""
    from airflow.sdk.log import configure_logging  # imports Airflow: keep `--help` fast

    from usergroup.airflow.hook import UserGroupHook

    configure_logging(output=sys.__stderr__)  # stdout is for the result (`--json` must parse)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    return UserGroupHook()


def emit_json(view) -> int:
    print(json.dumps(view, indent=2, ensure_ascii=False))
    return 0


def not_found(kind: str, ident: str) -> int:
    print(f"usergroup: no {kind} {ident}", file=sys.stderr)
    return 1


def db_upgrade(args) -> int:
    """The store's schema, then the tables of the OSS/BSS client the `usergroup_ossbss` connection names, if it keeps
    any (the fake does: beside the store's)."""
    from usergroup.airflow.ossbss_hook import OssBssHook
    from usergroup.store.migrate import upgrade

    hook = quiet_hook()
    revision = upgrade(hook.engine)
    url, db_schema = hook.url_and_schema
    print(f"usergroup store {url.render_as_string(hide_password=True)} (schema {db_schema}) is at revision {revision}")
    oss = OssBssHook(store=hook)
    if upgrade_oss := getattr(oss.client, "upgrade", None):
        print(f"OSS/BSS {oss.connection.conn_type} (connection {oss.ossbss_conn_id}): its tables are at revision "
              f"{upgrade_oss()}")
    return 0


def subscriptions_list(args) -> int:
    with quiet_hook().store.transaction() as repo:
        subs = repo.list_subscriptions()
        if args.json:
            return emit_json([subscription_record(repo, s) for s in subs])
    from usergroup.store.mappings import mapping_for

    print(f"{'subscription_id':36}  {'product':14}  {'status':12}  {'insync':6}  name")
    for s in subs:
        mapping = mapping_for(s.product.product_type)
        name = getattr(getattr(s, mapping.block), mapping.unique_name.field) if mapping.unique_name else None
        print(f"{s.subscription_id!s:36}  {s.product.name:14}  {s.status:12}  {s.insync!s:6}  {name or ''}")
    return 0


def subscriptions_show(args) -> int:
    with quiet_hook().store.transaction() as repo:
        sub = repo.get_subscription(args.id)
        if sub is None:
            return not_found("subscription", args.id)
        view = subscription_record(repo, sub)
    if args.json:
        return emit_json(view)
    for key in ("subscription_id", "product", "customer_id", "description", "status", "insync", "start_date",
                "end_date", "note", "version"):
        print(f"{key:16} {view[key]}")
    for key in sorted(view.keys() - {*SUBSCRIPTION_COLUMNS, "product", "processes"}):  # the product type's own
        for name, value in _flat(key, view[key]):
            print(f"{name:16} {value}")
    for p in view["processes"]:
        steps = ", ".join(f"{s['name']}:{s['status']}" for s in p["steps"])
        print(f"process          {p['process_id']} {p['workflow_target']} {p['status']} [{steps}]")
    return 0


def _flat(key: str, value) -> list[tuple[str, object]]:
    """A block's fields as `user.group.group_name`: value pairs."""
    if not isinstance(value, dict):
        return [(key, value)]
    return [pair for k, v in value.items() for pair in _flat(f"{key}.{k}", v)]


def subscriptions_workflows(args) -> int:
    """Which workflows may run on the subscription now, and why not (orchestrator-core's
    `GET /subscriptions/workflows/{id}`)."""
    from usergroup.engine.discovery import subscription_workflows

    with quiet_hook().store.transaction() as repo:
        sub = repo.get_subscription(args.id)
        if sub is None:
            return not_found("subscription", args.id)
        view = subscription_workflows(repo, sub)
    if args.json:
        return emit_json(view)
    for target, entries in view.items():
        for entry in entries if isinstance(entries, list) else ():
            verdict = f"refused: {entry['message']} ({entry['reason']})" if "reason" in entry else "allowed"
            print(f"{target:9}  {entry['name']:22}  {verdict}")
    return 0


def operations():
    """The operations layer over the `usergroup_default` store and Airflow (tests replace it)."""
    from usergroup.interfaces.operations import AirflowRuns, Operations

    return Operations(quiet_hook().store, AirflowRuns())


def refused(exc) -> int:
    """An operation refused or failed: its reason on stderr (the API's `detail`, the page's message), exit 1."""
    print(f"usergroup: {exc.reason}", file=sys.stderr)
    return 1


def subscriptions_set_in_sync(args) -> int:
    from usergroup.interfaces.operations import OperationError

    try:
        sub, changed = operations().set_in_sync(args.id)
    except OperationError as exc:
        return refused(exc)
    print(f"subscription {sub.subscription_id} is {'in sync' if changed else 'already in sync, left as it is'} "
          f"(version {sub.version})")
    return 0


def processes_abort(args) -> int:
    """Stop the process's Airflow run, then abort the process in the store; an aborted or completed process is
    refused (as the API and the page refuse it)."""
    from usergroup.interfaces.operations import OperationError, Unavailable

    try:
        done = operations().abort(args.id, args.reason)
    except Unavailable as exc:
        print(f"process {args.id} is aborted")
        return refused(exc)
    except OperationError as exc:
        return refused(exc)
    print(f"process {args.id} is aborted")
    print(done)
    return 0


def processes_resume(args) -> int:
    """A suspended process: `--input` answers the form it waits for. A failed one: clear its run's failed task."""
    import getpass

    from usergroup.interfaces.operations import OperationError

    answer, ok = _json_option(args.input, "--input")
    if not ok:
        return 1
    answer = [answer] if isinstance(answer, dict) else answer
    try:
        operations().resume(args.id, pages=answer, user=f"cli:{getpass.getuser()}")
    except OperationError as exc:
        if form := (exc.body or {}).get("form"):
            fields = ", ".join(f"{name} ({_choices(f)})" for name, f in form.get("properties", {}).items())
            exc.reason += f"; answer with --input '{{...}}', the fields of {form.get('title')}: {fields}"
        return refused(exc)
    print(f"process {args.id} is {'answered: it goes on' if answer not in (None, [{}]) else 'running again'}")
    return 0


def _json_option(text: str | None, option: str) -> tuple[Any, bool]:
    """The option's JSON value (None if not given), and whether it was JSON (if not, said on stderr)."""
    try:
        return (None if text is None else json.loads(text)), True
    except json.JSONDecodeError as exc:
        print(f"usergroup: {option} is not JSON: {exc}", file=sys.stderr)
        return None, False


def _choices(field: dict) -> str:
    """A form field's values, as the answer takes them."""
    values = field.get("enum") or ([field["const"]] if "const" in field else None)
    return "|".join(map(str, values)) if values else field.get("type", "any")


def processes_start(args) -> int:
    """Start a workflow: `field=value` pairs (a JSON value or text) or `--pages` (orchestrator-core's form pages,
    a JSON list), validated and checked as the API and the page do."""
    import getpass

    from usergroup.interfaces.operations import OperationError

    if args.pages is not None:
        given, ok = _json_option(args.pages, "--pages")
        if not ok:
            return 1
    else:
        given = _pages_of(args.workflow, args.fields)
    try:
        process_id = operations().start(args.workflow, given, f"cli:{getpass.getuser()}")
    except OperationError as exc:
        return refused(exc)
    print(f"process {process_id} is started")
    return 0


def _pages_of(workflow_key: str, fields: list[str]) -> list[dict]:
    """`field=value` pairs as the workflow's form pages (each field on its page)."""
    from usergroup.engine.discovery import all_workflows
    from usergroup.interfaces.form_pages import pages

    values = {}
    for pair in fields:
        key, _, value = pair.partition("=")
        try:
            values[key] = json.loads(value)
        except json.JSONDecodeError:
            values[key] = value
    workflow = all_workflows().get(workflow_key)
    if workflow is None:
        return [values]  # the operation names the workflows there are
    models = pages(workflow)
    out = [{k: v for k, v in values.items() if k in m.model_fields} for m in models]
    out[-1].update({k: v for k, v in values.items() if not any(k in m.model_fields for m in models)})
    return out


def processes_reconcile(args) -> int:
    """Bring every process in line with its ended DAG run (what the listener does as runs end), e.g. after the
    store was out of reach when a run failed."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from usergroup.airflow.listener import ended_run
    from usergroup.engine.discovery import declared
    from usergroup.engine.settle import settle

    store = quiet_hook().store
    with create_session() as session:
        workflows = declared()
        runs = session.scalars(select(DagRun).where(DagRun.dag_id.in_(list(workflows)),
                                                    DagRun.state.in_(["success", "failed"]))).all()
        ended = [ended_run(r, workflows[r.dag_id], str(r.state)) for r in runs]
    changed = 0
    with store.transaction() as repo:
        for run in ended:
            if said := settle(repo, workflows[run.dag_id], run):
                changed += 1
                print(said)
    print(f"{changed} of {len(ended)} ended runs needed their process brought in line")
    return 0


def processes_list(args) -> int:
    with quiet_hook().store.transaction() as repo:
        views = [process_record(repo, p) for p in repo.list_processes(status=args.status)]
    if args.json:
        return emit_json(views)
    print(f"{'process_id':36}  {'workflow':20}  {'target':8}  {'status':9}  {'last_step':26}  failed_reason")
    for p in views:
        print(f"{p['process_id']:36}  {p['workflow_name']:20}  {p['workflow_target']:8}  {p['status']:9}  "
              f"{p['last_step'] or '':26}  {p['failed_reason'] or ''}")
    return 0


def processes_show(args) -> int:
    with quiet_hook().store.transaction() as repo:
        process = repo.get_process(args.id)
        if process is None:
            return not_found("process", args.id)
        view = process_record(repo, process, detail=True)
    if args.json:
        return emit_json(view)
    for key in ("process_id", "workflow_name", "workflow_target", "status", "last_step", "failed_reason",
                "created_by", "dag_id", "run_id", "started_at", "last_modified_at", "subscriptions"):
        print(f"{key:17} {view[key]}")
    for st in view["steps"]:
        note = (st["note"] or "").splitlines()
        print(f"step              {st['task_id']:28} try {st['try_number']}  {st['status']:9} {st['completed_at']}"
              f"{'  ' + note[0] if note else ''}")
        for line in [*note[1:], *(st["error"] or "").splitlines()[:1]]:
            print("                  " + line)
    if form := view.get("form"):
        print(f"waits for         {form.get('title')}: answer with usergroup processes resume {args.id} --input "
              f"'{{...}}' (fields: {', '.join(form.get('properties', {}))})")
    return 0


def workflows_list(args) -> int:
    """The workflows, schedules and bulk runs this package declares: their DAG ids, one a line (deployments
    unpause them from it)."""
    from usergroup.domain.subscription import products_of_type
    from usergroup.engine.discovery import declared
    from usergroup.engine.workflow import Bulk, Schedule

    for name, w in sorted(declared().items()):
        if not args.chain:
            print(name)
        elif isinstance(w, Schedule):
            products = " or ".join(p.name for p in products_of_type(w.workflow.product_type))
            print(f"{name}\t{w.schedule}\t{w.workflow.name} for each active {products} in sync")
        elif isinstance(w, Bulk):
            print(f"{name}\tbulk\t{w.workflow.name} for each of many, each task for all: "
                  f"{' >> '.join(w.workflow.task_ids)}")
        else:
            print(f"{name}\t{w.target}\t{' >> '.join(w.task_ids)}")
    return 0


def ossbss(args, call: str):
    """The OSS/BSS client the `usergroup_ossbss` connection names, if it offers `call` (the fake does)."""
    from usergroup.airflow.ossbss_hook import OssBssHook

    oss = OssBssHook(store=quiet_hook())
    if not callable(getattr(oss.client, call, None)):
        raise NotOffered(f"the OSS/BSS client of the connection {oss.ossbss_conn_id!r} (conn type "
                         f"{oss.connection.conn_type!r}) offers no {call}(): `usergroup ossbss {args.command}` "
                         "works on a client that does (the fake OSS/BSS)")
    return oss.client


class NotOffered(Exception):
    """The OSS/BSS client does not offer what the command asks of it."""


def ossbss_list(args) -> int:
    groups = ossbss(args, "groups").groups()
    if args.json:
        return emit_json([{k: str(v) if k == "subscription_id" else v for k, v in g.items()} for g in groups])
    width = max([8, *(len(str(g["group_id"])) for g in groups)])  # the fake's numbers, SCIM's 32-character ids
    print(f"{'subscription_id':36}  {'group_id':>{width}}  group_name")
    for g in groups:
        print(f"{g['subscription_id']!s:36}  {g['group_id']!s:>{width}}  {g['group_name']}")
    return 0


def ossbss_drift(args) -> int:
    """Change a group in the OSS/BSS behind the store's back, to see validate_user_group (and its users'
    validate_user) catch it."""
    was = ossbss(args, "drift").drift(UUID(args.id), group_name=args.rename, remove=args.remove)
    change = "removed" if args.remove else f"renamed to {args.rename!r}"
    print(f"OSS/BSS: group {was['group_id']} ({was['group_name']!r}) of subscription {args.id} {change}")
    return 0


def ossbss_faults(args) -> int:
    """Show the fake OSS/BSS's fault switches, setting those given first; a running stack's tasks see them at
    their next call."""
    fake = ossbss(args, "set_faults")
    table = fake.set_faults(fail=args.fail, delay=args.delay, refuse=args.refuse, no_refuse=args.no_refuse)
    faults = fake.faults()  # with this environment's
    env = " (USERGROUP_FAKE_OSS_FAIL in this environment)" if faults.fail and not table["fail"] else ""
    print(f"fail:   {'on' if faults.fail else 'off'}{env}\ndelay:  {faults.delay:g} s\nrefuse: "
          + ("; ".join(f"{p.pattern!r} ({source})" for source, p in faults.refuse) or "none"))
    return 0


def _seconds(value: str) -> float:
    from usergroup.ossbss.fake import MAX_DELAY

    try:
        seconds = float(value)
    except ValueError:
        seconds = -1
    if not 0 <= seconds <= MAX_DELAY:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds from 0 to {MAX_DELAY}")
    return seconds


def _uuid(value: str) -> str:
    try:
        return str(UUID(value))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an id (a UUID)") from None


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="usergroup", description="The User Group subscription store.")
    groups = p.add_subparsers(dest="group", required=True)
    db = groups.add_parser("db", help="the store's schema").add_subparsers(dest="command", required=True)
    db.add_parser("upgrade", help="create or upgrade the store's schema, and the tables of the OSS/BSS client "
                  "the usergroup_ossbss connection names (the fake's)").set_defaults(func=db_upgrade)
    subs = groups.add_parser("subscriptions", help="User Group subscriptions").add_subparsers(
        dest="command", required=True)
    ls = subs.add_parser("list", help="all subscriptions")
    ls.add_argument("--json", action="store_true", help="an array of subscription objects")
    ls.set_defaults(func=subscriptions_list)
    show = subs.add_parser("show", help="one subscription with its processes")
    show.add_argument("id", type=_uuid, help="the subscription id")
    show.add_argument("--json", action="store_true", help="one subscription object")
    show.set_defaults(func=subscriptions_show)
    swf = subs.add_parser("workflows", help="which workflows may run on the subscription now, and why not")
    swf.add_argument("id", type=_uuid, help="the subscription id")
    swf.add_argument("--json", action="store_true", help="per target, each workflow with its reason if refused")
    swf.set_defaults(func=subscriptions_workflows)
    sync = subs.add_parser("set-in-sync", help="operator recovery: mark a subscription in sync again")
    sync.add_argument("id", type=_uuid, help="the subscription id")
    sync.set_defaults(func=subscriptions_set_in_sync)
    wf = groups.add_parser("workflows", help="the workflows and schedules (DAG ids) this package declares, one a "
                           "line")
    wf.add_argument("--chain", action="store_true", help="with each one's target and chain of tasks (or schedule)")
    wf.set_defaults(func=workflows_list)
    oss = groups.add_parser("ossbss", help="the OSS/BSS of the usergroup_ossbss connection, if it lists its groups "
                            "(the fake, a SCIM endpoint)").add_subparsers(
        dest="command", required=True)
    ol = oss.add_parser("list", help="the groups it holds")
    ol.add_argument("--json", action="store_true", help="an array of groups")
    ol.set_defaults(func=ossbss_list)
    od = oss.add_parser("drift", help="change a group behind the store's back (validate_user_group and "
                                     "its users' validate_user then fail)")
    od.add_argument("id", type=_uuid, help="the subscription whose group drifts")
    how = od.add_mutually_exclusive_group(required=True)
    how.add_argument("--rename", metavar="NAME", help="give the group another name")
    how.add_argument("--remove", action="store_true", help="remove the group")
    od.set_defaults(func=ossbss_drift)
    of = oss.add_parser("faults", help="show, or set, the fake's fault switches (running tasks see them at their "
                        "next call; the USERGROUP_FAKE_OSS_* variables add to them)")
    fail = of.add_mutually_exclusive_group()
    fail.add_argument("--fail", action="store_const", const=True, help="every call fails as unavailable (retried)")
    fail.add_argument("--no-fail", dest="fail", action="store_const", const=False, help="calls answer again")
    of.add_argument("--delay", type=_seconds, metavar="SECONDS", help="answer this long after provisioning (0 to 30)")
    refuse = of.add_mutually_exclusive_group()
    refuse.add_argument("--refuse", metavar="REGEX", help="refuse to provision the group names it matches")
    refuse.add_argument("--no-refuse", action="store_true", help="refuse no name")
    of.set_defaults(func=ossbss_faults)
    procs = groups.add_parser("processes", help="the process trail").add_subparsers(dest="command", required=True)
    pl = procs.add_parser("list", help="all processes")
    pl.add_argument("--status", choices=[s.value for s in ProcessStatus], help="only processes in this status")
    pl.add_argument("--json", action="store_true", help="an array of process objects")
    pl.set_defaults(func=processes_list)
    ps = procs.add_parser("show", help="one process: its steps, tries and errors")
    ps.add_argument("id", type=_uuid, help="the process id")
    ps.add_argument("--json", action="store_true", help="one process object, with each step's state")
    ps.set_defaults(func=processes_show)
    pr = procs.add_parser("reconcile", help="bring every process in line with its ended DAG run (after the store "
                          "was out of reach when a run ended)")
    pr.set_defaults(func=processes_reconcile)
    pa = procs.add_parser("abort", help="abort an unfinished process: no step of it runs any more, and its DAG run "
                          "is marked failed if it is still going")
    pa.add_argument("id", type=_uuid, help="the process id")
    pa.add_argument("--reason", default="aborted by an operator", help="recorded as the process's reason")
    pa.set_defaults(func=processes_abort)
    pe = procs.add_parser("resume", help="resume a failed process (its failed task is cleared and the run goes on), "
                          "or answer a suspended one")
    pe.add_argument("id", type=_uuid, help="the process id")
    pe.add_argument("--input", help="the answer to the form a suspended process waits for, a JSON object (usergroup "
                    "processes show ID prints the form)")
    pe.set_defaults(func=processes_resume)
    pt = procs.add_parser("start", help="start a workflow, checked as the API checks it")
    pt.add_argument("workflow", help="the workflow's name (usergroup workflows list)")
    pt.add_argument("fields", nargs="*", metavar="FIELD=VALUE", help="its form's fields (a value is JSON or text)")
    pt.add_argument("--pages", help="orchestrator-core's form pages instead, a JSON list")
    pt.set_defaults(func=processes_start)
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
