"""The steps as plain functions over a state, with a real repository."""

from uuid import UUID, uuid4

import pytest

from usergroup.domain import USER_GROUP_PRODUCT, SubscriptionLifecycle, Target, UserGroup, UserGroupInactive
from usergroup.engine.generic_steps import done, resync, set_status, store_process_subscription
from usergroup.engine.step import StepContext, StepError
from usergroup.ossbss.errors import OssBssError
from usergroup.store import tables
from usergroup.store.errors import DuplicateNameError
from usergroup.workflows.user_group.create_user_group import (
    create_subscription,
    initialize_subscription,
    provision_user_group,
)


def initial_state(name="Research Lab") -> dict:
    return {"process_id": str(uuid4()), "workflow_name": "create_user_group", "workflow_target": "CREATE",
            "product_id": str(USER_GROUP_PRODUCT.product_id), "customer_id": str(uuid4()), "group_name": name}


def test_create_subscription_returns_subscription_and_id_deterministically(store):
    state = initial_state()
    with store.transaction() as repo:
        result = create_subscription(state, StepContext(store=repo))
        again = create_subscription(state, StepContext(store=repo))
    sub = result["subscription"]
    assert type(sub) is UserGroupInactive and sub.status == SubscriptionLifecycle.INITIAL
    assert result["subscription_id"] == str(sub.subscription_id) == again["subscription_id"]
    assert str(sub.customer_id) == state["customer_id"]
    assert sub.user_group.group_name is None  # the name is assigned by initialize_subscription


def test_create_subscription_refuses_a_duplicate_name_naming_the_holder(store):
    state = initial_state("Research Lab")
    sub = UserGroupInactive.from_product_id(USER_GROUP_PRODUCT.product_id, UUID(state["customer_id"]))
    sub.user_group.group_name = "Research Lab"
    with store.transaction() as repo:
        held = repo.save_subscription(sub)
    with pytest.raises(DuplicateNameError, match=str(held.subscription_id)), store.transaction() as repo:
        create_subscription({**state, "group_name": "RESEARCH LAB"}, StepContext(store=repo))


def test_initialize_subscription_names_describes_and_moves_to_provisioning():
    sub = UserGroupInactive.from_product_id(USER_GROUP_PRODUCT.product_id, uuid4())
    out = initialize_subscription({"subscription": sub.model_dump(mode="json"), "group_name": "Lab 1"})
    new = out["subscription"]
    assert new.status == "provisioning" and new.user_group.group_name == "Lab 1"
    assert new.description == "User Group Lab 1"


def test_provision_user_group_stores_a_stable_group_id(oss):
    sub = UserGroupInactive.from_product_id(USER_GROUP_PRODUCT.product_id, uuid4())
    sub = initialize_subscription({"subscription": sub.model_dump(mode="json"), "group_name": "Lab"})["subscription"]
    state = {"subscription": sub.model_dump(mode="json")}
    first = provision_user_group(state, StepContext(oss=oss))
    second = provision_user_group(state, StepContext(oss=oss))
    assert first["group_id"] == second["group_id"] == first["subscription"].user_group.group_id > 0
    (group,) = oss.groups()  # the fake kept one group, and was asked twice
    assert group["subscription_id"] == sub.subscription_id and group["calls"] == 2


def test_provision_user_group_fails_on_demand(oss, knobs):
    knobs(USERGROUP_FAKE_OSS_FAIL="1")
    with pytest.raises(OssBssError, match="unavailable"):
        oss.provision_user_group(uuid4(), "x")
    knobs(USERGROUP_FAKE_OSS_FAIL="0")
    assert oss.provision_user_group(uuid4(), "x") > 0


def test_a_step_refuses_a_subscription_in_the_wrong_lifecycle(oss):
    sub = UserGroupInactive.from_product_id(USER_GROUP_PRODUCT.product_id, uuid4())
    with pytest.raises(StepError, match="needs UserGroupProvisioning"):
        provision_user_group({"subscription": sub.model_dump(mode="json")}, StepContext(oss=oss))


def test_set_status_active_sets_start_date_and_resync_sets_insync():
    sub = UserGroupInactive.from_product_id(USER_GROUP_PRODUCT.product_id, uuid4())
    sub.user_group.group_name, sub.user_group.group_id = "x", 5
    sub = sub.model_copy(update={"status": SubscriptionLifecycle.PROVISIONING})
    active = set_status(SubscriptionLifecycle.ACTIVE)({"subscription": sub.model_dump(mode="json")})["subscription"]
    assert type(active) is UserGroup and active.start_date is not None and active.insync is False
    synced = resync({"subscription": active.model_dump(mode="json")})["subscription"]
    assert synced.insync is True


def test_set_status_active_refuses_a_subscription_without_group_id():
    sub = UserGroupInactive.from_product_id(USER_GROUP_PRODUCT.product_id, uuid4())
    sub.user_group.group_name = "x"
    with pytest.raises(ValueError, match=r"UserGroupBlock\.group_id is required"):
        set_status(SubscriptionLifecycle.ACTIVE)({"subscription": sub.model_dump(mode="json")})


def test_store_process_subscription_and_done_write_the_trail(store):
    state = initial_state()
    pid = UUID(state["process_id"])
    with store.transaction() as repo:
        repo.start_process(pid, workflow_name="create_user_group", workflow_target="CREATE", dag_id="d",
                           run_id="r", created_by=None, input_state=state)
        sub = repo.save_subscription(create_subscription(state, StepContext(store=repo))["subscription"])
        step = store_process_subscription(Target.CREATE)
        assert step.name == "store_process_subscription"
        assert step({**state, "subscription_id": str(sub.subscription_id)}, StepContext(store=repo)) == {}
        repo.enter_step(pid, "done")  # the adapter does this before every step
        assert done(state, StepContext(store=repo)) == {}
    with store.transaction() as repo:
        (process,) = repo.processes_of(sub.subscription_id)
        assert process["status"] == "completed" and process["link_target"] == "CREATE"
        assert repo.count(tables.processes_subscriptions) == 1
