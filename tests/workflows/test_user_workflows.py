"""The User product on the store: create, modify, terminate; its group is a reference (a rename shows at once),
a group in use is not terminated; refusals write nothing; races and faults."""

from uuid import UUID, uuid4

import pytest
from airflow.sdk.exceptions import AirflowFailException
from test_faults import CrashAfterCommit, TaskDied

from helpers import USER_EXTERNAL, at_once, counts, create, create_user, oss_for, run_on, run_tasks
from usergroup.airflow.tasks import run_step
from usergroup.engine.discovery import subscription_workflows
from usergroup.interfaces.views import subscription_record
from usergroup.store.mappings.user import user_blocks
from usergroup.workflows.user.create_user import create_user as create_user_workflow
from usergroup.workflows.user.modify_user import modify_user
from usergroup.workflows.user.terminate_user import terminate_user
from usergroup.workflows.user_group.modify_user_group import modify_user_group
from usergroup.workflows.user_group.terminate_user_group import terminate_user_group


def load(store, sid: str):
    with store.transaction() as repo:
        return repo.get_subscription(sid)


def test_a_user_refers_to_its_group_and_sees_it_renamed(store):
    gid = create(store, "Physics")["subscription_id"]
    done = create_user(store, gid, "alice", age=30)
    user = load(store, done["subscription_id"])
    assert (type(user).__name__, user.status, user.insync, user.affiliation) == ("User", "active", True, "internal")
    assert (user.user.username, user.user.age, user.user.user_id) == ("alice", 30, oss_for(store).users()[0]["user_id"])
    assert str(user.user.group.owner_subscription_id) == gid and user.user.group.group_name == "Physics"
    assert user.description == "User alice from group Physics (internal)"
    assert "group_name" not in user_blocks.c  # a reference, never a copy

    run_on(store, modify_user_group, gid, group_name="Astro Physics")
    user = load(store, done["subscription_id"])
    assert user.user.group.group_name == "Astro Physics"  # at once, nothing copied
    assert user.description == "User alice from group Physics (internal)"  # written at create, as orchestrator-core
    with store.transaction() as repo:
        view = subscription_record(repo, user)
    assert view["affiliation"] == "internal" and view["user"]["group"]["group_name"] == "Astro Physics"
    assert "user_group" not in view and [p["workflow_target"] for p in view["processes"]] == ["CREATE"]

    external = load(store, create_user(store, gid, "bob", product=USER_EXTERNAL)["subscription_id"])
    assert (external.product.name, external.affiliation, external.user.age) == ("User external", "external", None)


def test_modify_user_changes_username_and_age_the_group_stays(store):
    gid = create(store, "Chemistry")["subscription_id"]
    sid = create_user(store, gid, "carol", age=40)["subscription_id"]
    create_user(store, gid, "dave")
    run_on(store, modify_user, sid, username="Carol B")  # no age: it stays
    user = load(store, sid)
    assert (user.user.username, user.user.age, str(user.user.group.owner_subscription_id)) == ("Carol B", 40, gid)
    assert user.description == "User Carol B from group Chemistry (internal)" and user.insync
    run_on(store, modify_user, sid, username="Carol B", age=41, version=user.version)
    assert load(store, sid).user.age == 41
    assert [c["action"] for c in oss_for(store).changes(sid)] == ["provision_user", "update_user", "update_user"]
    (row,) = [u for u in oss_for(store).users() if str(u["subscription_id"]) == sid]
    assert (row["username"], row["age"]) == ("Carol B", 41)

    before = counts(store)
    with pytest.raises(AirflowFailException, match="'DAVE' is already used by subscription .* in this group"):
        run_on(store, modify_user, sid, username="DAVE")
    assert counts(store) == before
    other = create(store, "Biology")["subscription_id"]
    create_user(store, other, "dave")  # a username is unique per group only


def test_a_group_with_users_is_not_terminated_until_they_are(store):
    gid = create(store, "Geology")["subscription_id"]
    users = [create_user(store, gid, name)["subscription_id"] for name in ("erin", "frank")]
    before = counts(store)
    with pytest.raises(AirflowFailException, match="can not be terminated as it is used in other subscriptions: "
                                                   "subscription .*") as refused:
        run_on(store, terminate_user_group, gid)
    assert f"subscription {users[0]} (User erin from group Geology (internal))" in str(refused.value)
    assert f"subscription {users[1]} (User frank from group Geology (internal))" in str(refused.value)
    assert counts(store) == before  # refused at the first task: nothing written
    group = load(store, gid)
    with store.transaction() as repo:
        (terminate,) = subscription_workflows(repo, group)["terminate"]
    assert terminate["reason"] == "subscription.no_modify_subscription_in_use_by_others"
    assert users[1] in terminate["message"]

    run_on(store, terminate_user, users[0])
    with pytest.raises(AirflowFailException, match=f"used in other subscriptions: subscription {users[1]} "):
        run_on(store, terminate_user_group, gid)
    run_on(store, terminate_user, users[1])
    assert [load(store, u).status for u in users] == ["terminated", "terminated"]
    assert oss_for(store).users() == []
    run_on(store, terminate_user_group, gid)
    assert load(store, gid).status == "terminated"
    with pytest.raises(AirflowFailException, match=f"subscription {gid} is terminated"):
        create_user(store, gid, "late")


def test_the_username_is_free_again_once_its_user_is_terminated(store):
    gid = create(store, "Optics")["subscription_id"]
    first = create_user(store, gid, "gina")["subscription_id"]
    run_on(store, terminate_user, first)
    again = create_user(store, gid, "GINA")["subscription_id"]
    assert load(store, again).status == "active"


def test_create_user_refusals_write_nothing(store):
    active = create(store, "Open Lab")["subscription_id"]
    create_user(store, active, "henk")
    being_made = create_user(store, active, "ida", upto=1)  # has claimed its username, goes on
    gone = create(store, "Closed Lab")["subscription_id"]
    run_on(store, terminate_user_group, gone)
    held = create(store, "Held Lab")["subscription_id"]
    holder = run_on(store, modify_user_group, held, upto=2, group_name="Held Lab 2")  # past its unsync
    a_user = create_user(store, active, "jan")["subscription_id"]
    before, users = counts(store), oss_for(store).users()
    cases = [
        (str(uuid4()), "x", "no UserGroup subscription"),
        (gone, "x", f"subscription {gone} is terminated: only an active User Group can be used"),
        (held, "x", f"subscription {held} is out of sync; held by process {holder['process_id']}"),
        (a_user, "x", f"subscription {a_user} is a User internal, not a UserGroup"),
        (active, "HENK", "username 'HENK' is already used by subscription .* in this group"),
        (active, "Ida", f"username 'Ida' is being claimed by process {being_made['process_id']}"),
    ]
    for group, username, message in cases:
        with pytest.raises(AirflowFailException, match=message):
            create_user(store, group, username)
    assert counts(store) == before and oss_for(store).users() == users


def test_a_user_whose_create_was_given_up_is_cleaned_up_and_frees_the_group(store):
    gid = create(store, "Temp Lab")["subscription_id"]
    state = create_user(store, gid, "kees", upto=3)  # initialized: it refers to the group, provisioning
    with store.transaction() as repo:
        repo.abort_process(UUID(state["process_id"]), "given up")
    with pytest.raises(AirflowFailException, match="used in other subscriptions"):
        run_on(store, terminate_user_group, gid)
    run_on(store, terminate_user, state["subscription_id"])
    assert load(store, state["subscription_id"]).status == "terminated"
    run_on(store, terminate_user_group, gid)
    assert load(store, gid).status == "terminated"


def test_creates_racing_the_groups_termination_never_leave_a_user_in_a_terminated_group(store):
    """Ten creates into a group and its termination, all at once: the termination is refused (some users were
    made) or it won, and no user points at the terminated group (the creates that came after were refused)."""
    gid = create(store, "Racing Lab")["subscription_id"]
    calls = [lambda i=i: create_user(store, gid, f"user {i}") for i in range(10)]
    won, lost = at_once([*calls, lambda: run_on(store, terminate_user_group, gid)])
    group = load(store, gid)
    with store.transaction() as repo:
        made = [s for s in repo.list_subscriptions() if s.product.product_type == "User"]
    pointing = [u for u in made if u.user.group.owner_subscription_id is not None]
    if group.status == "terminated":
        assert pointing == [] and len(won) == 1 and len(lost) == 10
        assert all(u.status == "initial" for u in made)  # refused after their first task: clean-up candidates
    else:
        assert group.status == "active" and group.insync and len(pointing) == len(won) == 10 - len(lost) + 1
        assert any("used in other subscriptions" in m for m in lost), lost
        assert all(u.status == "active" and u.insync for u in pointing)
    assert {u.user.group.owner_subscription_id for u in pointing} <= {UUID(gid)}


def test_ten_creates_with_one_username_make_one_user(store):
    gid = create(store, "Crowded Lab")["subscription_id"]
    won, lost = at_once([lambda i=i: create_user(store, gid, "Same" if i % 2 else "SAME") for i in range(10)])
    assert len(won) == 1 and len(lost) == 9
    assert all("is being claimed by process" in m or "is already used by" in m for m in lost), lost
    with store.transaction() as repo:
        users = [s for s in repo.list_subscriptions() if s.product.product_type == "User"]
    assert [(u.user.username, u.status) for u in users] == [(won[0]["username"], "active")]
    assert len(oss_for(store).users()) == 1


WORKFLOWS = {w.name: w for w in (create_user_workflow, modify_user, terminate_user)}
FAULT_CASES = [(w.name, step.name) for w in WORKFLOWS.values() for step in w.steps]


@pytest.mark.parametrize(("name", "crash_in"), FAULT_CASES)
def test_a_crash_after_each_steps_commit_then_the_retry(store, name, crash_in):
    gid = create(store, "Fault Lab")["subscription_id"]
    workflow = WORKFLOWS[name]
    if name == "create_user":
        from helpers import start_state

        state = start_state(workflow, "faults", product="3f1b7c52-8e4d-4a6b-9c21-5d7e0f3a9b11", user_group_id=gid,
                            username="faulty", age=None)
    else:
        from helpers import start_state

        sid = create_user(store, gid, "faulty")["subscription_id"]
        state = start_state(workflow, "faults", subscription_id=sid, version=None,
                            **({"username": "renamed", "age": 9} if name == "modify_user" else {}))
    crashing = CrashAfterCommit(store.engine, crash_in)
    start = {"workflow_name": name, "workflow_target": str(workflow.target), "dag_id": name, "run_id": "faults",
             "created_by": "test"}
    for i, (step, task_id) in enumerate(zip(workflow.steps, workflow.task_ids, strict=True)):
        kw = {"start": start if i == 0 else None, "checks": workflow.checks if i == 0 else (), "task_id": task_id}
        try:
            state = run_step(step, state, store=crashing, oss=oss_for(store), try_number=1, **kw)
        except TaskDied:
            state = run_step(step, state, store=crashing, oss=oss_for(store), try_number=2, **kw)
    assert crashing.crashed
    user = load(store, state["subscription_id"])
    assert (user.status, user.insync) == ({"terminate_user": "terminated"}.get(name, "active"), True)
    with store.transaction() as repo:
        trail = [(s["task_id"], s["try_number"], s["status"]) for s in repo.steps_of(state["process_id"])]
    assert (crash_in, 2, "replayed") in trail and len(trail) == len(workflow.steps) + 1
    actions = [c["action"] for c in oss_for(store).changes(state["subscription_id"])]
    assert actions == {"create_user": ["provision_user"], "modify_user": ["provision_user", "update_user"],
                       "terminate_user": ["provision_user", "remove_user"]}[name]


def test_the_provisioning_answer_lost_then_the_retry_makes_no_second_user(store, monkeypatch):
    gid = create(store, "Lost Answer Lab")["subscription_id"]
    provision = create_user_workflow.task_ids.index("provision_user")
    state = create_user(store, gid, "lost", upto=provision)
    oss = oss_for(store)
    real, ids = oss.provision_user, []

    def provision_then_die(*args, **kwargs):
        ids.append(real(*args, **kwargs))
        if len(ids) == 1:
            raise TaskDied("killed between the OSS/BSS answer and the commit")
        return ids[-1]

    monkeypatch.setattr(oss, "provision_user", provision_then_die)
    step = create_user_workflow.steps[provision]
    with pytest.raises(TaskDied):
        run_step(step, state, store=store, oss=oss, try_number=1, task_id=step.name)
    state = run_step(step, state, store=store, oss=oss, try_number=2, task_id=step.name)
    run_tasks(store, create_user_workflow, state, after=provision + 1, run_id="x")
    assert ids[0] == ids[1] and len(oss_for(store).users()) == 1
    assert load(store, state["subscription_id"]).user.user_id == ids[0]


def test_a_user_refused_before_its_group_was_set_is_cleaned_up(store):
    """A terminate of the group got there first: the create is refused at initialize_subscription (aborted), the
    user left initial without a group; terminate_user cleans it up."""
    gid = create(store, "Short Lab")["subscription_id"]
    state = create_user(store, gid, "late", upto=2)
    run_on(store, terminate_user_group, gid)
    with pytest.raises(AirflowFailException, match=f"subscription {gid} is terminated"):
        run_tasks(store, create_user_workflow, state, upto=3, after=2, run_id="x")
    with store.transaction() as repo:
        assert repo.get_process(state["process_id"])["status"] == "aborted"
    run_on(store, terminate_user, state["subscription_id"])
    user = load(store, state["subscription_id"])
    assert (user.status, user.insync, user.user.group.owner_subscription_id) == ("terminated", True, None)


def test_names_whose_compared_form_fits_the_index_and_those_that_do_not(store):
    """U+FDFA is one visible letter that compares as eighteen: the longest that fits is stored on both databases,
    one longer is refused by the form, naming the rule."""
    from pydantic import ValidationError

    gid = create(store, "Wide Lab")["subscription_id"]
    user = load(store, create_user(store, gid, "\ufdfa" * 56)["subscription_id"])
    assert user.status == "active" and user.user.username == "\ufdfa" * 56
    conf = {"product": "3f1b7c52-8e4d-4a6b-9c21-5d7e0f3a9b11", "user_group_id": gid, "username": "\ufdfa" * 60}
    with pytest.raises(ValidationError, match="username is too long as it is compared: .* 1080 characters"):
        create_user_workflow.form.model_validate(conf)
