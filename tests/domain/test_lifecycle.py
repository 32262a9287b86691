"""Domain: creation from a product, each lifecycle transition and each missing-field error."""

from uuid import uuid4

import pytest

from usergroup.domain import (
    USER_GROUP_PRODUCT,
    LifecycleError,
    SubscriptionLifecycle,
    SubscriptionModel,
    UserGroup,
    UserGroupInactive,
    UserGroupProvisioning,
)

CUSTOMER = uuid4()


def new() -> UserGroupInactive:
    return UserGroupInactive.from_product_id(USER_GROUP_PRODUCT.product_id, CUSTOMER)


def test_from_product_id_makes_an_initial_out_of_sync_subscription():
    sub = new()
    assert type(sub) is UserGroupInactive
    assert sub.status == SubscriptionLifecycle.INITIAL
    assert sub.insync is False
    assert sub.description == "Initial subscription of User Group"
    assert sub.customer_id == CUSTOMER
    assert sub.product.product_type == "UserGroup" and sub.product.tag == "GROUP"
    assert sub.user_group.group_name is None and sub.user_group.group_id is None
    assert sub.start_date is None and sub.version == 0


def test_from_product_id_refuses_an_unknown_product():
    with pytest.raises(LifecycleError, match="unknown product_id"):
        UserGroupInactive.from_product_id(uuid4(), CUSTOMER)


def test_the_whole_lifecycle_initial_provisioning_active_terminated():
    sub = new()
    sub.user_group.group_name = "Research Lab"
    prov = UserGroupInactive.from_other_lifecycle(sub, SubscriptionLifecycle.PROVISIONING)
    assert type(prov) is UserGroupProvisioning and prov.status == "provisioning"
    prov.user_group.group_id = 42
    active = UserGroupProvisioning.from_other_lifecycle(prov, SubscriptionLifecycle.ACTIVE)
    assert type(active) is UserGroup and active.start_date is not None and active.end_date is None
    terminated = UserGroup.from_other_lifecycle(active, SubscriptionLifecycle.TERMINATED)
    assert type(terminated) is UserGroupInactive
    assert terminated.end_date is not None and terminated.start_date == active.start_date


@pytest.mark.parametrize(
    ("status", "block", "field", "values"),
    [
        (SubscriptionLifecycle.PROVISIONING, "UserGroupBlockProvisioning", "group_name", {}),
        (SubscriptionLifecycle.ACTIVE, "UserGroupBlock", "group_name", {"group_id": 7}),
        (SubscriptionLifecycle.ACTIVE, "UserGroupBlock", "group_id", {"group_name": "x"}),
    ],
)
def test_a_missing_mandatory_field_names_block_and_field(status, block, field, values):
    sub = new()
    for k, v in values.items():
        setattr(sub.user_group, k, v)
    with pytest.raises(LifecycleError, match=rf"{block}\.{field} is required"):
        UserGroupInactive.from_other_lifecycle(sub, status)


def test_the_stricter_class_is_chosen_by_status_and_state_round_trips():
    sub = new()
    sub.user_group.group_name = "a"
    prov = UserGroupInactive.from_other_lifecycle(sub, "provisioning")
    again = SubscriptionModel.from_state(prov.model_dump(mode="json"))
    assert again == prov and type(again) is UserGroupProvisioning
    assert UserGroupInactive.type_for(SubscriptionLifecycle.DISABLED) is UserGroupInactive


def test_a_stricter_class_refuses_a_looser_subscription_directly():
    with pytest.raises(ValueError, match="group_id"):
        UserGroup.model_validate({**new().model_dump(), "status": "active"})


def test_reading_a_state_tolerates_fields_the_model_no_longer_knows_writing_stays_strict():
    """A state written before a field was removed or renamed (XCom, a recorded step) still reads back."""
    sub = new()
    sub.user_group.group_name = "a"
    prov = UserGroupInactive.from_other_lifecycle(sub, "provisioning")
    old = prov.model_dump(mode="json")
    old["retired_field"] = "x"
    old["user_group"]["renamed_from"] = 3
    old["product"]["old_fixed_input"] = "y"
    assert SubscriptionModel.from_state(old) == prov
    with pytest.raises(ValueError, match="retired_field"):
        UserGroupProvisioning.model_validate(old)  # a model built from new input still forbids unknown fields
    with pytest.raises(ValueError, match="renamed_from"):
        prov.user_group = {**old["user_group"]}
