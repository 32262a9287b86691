"""Domain: the User products and lifecycle trio; the user's group is an existing group's block."""

from uuid import uuid4

import pytest

from usergroup.domain import (
    USER_EXTERNAL_PRODUCT,
    USER_GROUP_PRODUCT,
    USER_INTERNAL_PRODUCT,
    LifecycleError,
    SubscriptionLifecycle,
    SubscriptionModel,
    User,
    UserGroupBlock,
    UserInactive,
    UserProvisioning,
)

CUSTOMER = uuid4()


def test_a_new_user_takes_its_products_fixed_input_and_an_empty_group():
    internal = UserInactive.from_product_id(USER_INTERNAL_PRODUCT.product_id, CUSTOMER)
    external = UserInactive.from_product_id(USER_EXTERNAL_PRODUCT.product_id, CUSTOMER)
    assert (internal.affiliation, external.affiliation) == ("internal", "external")
    assert internal.user.group.owner_subscription_id is None and internal.user.group.group_name is None
    assert internal.block_fields() == {"user"}
    with pytest.raises(LifecycleError, match="product User Group is not a UserInactive"):
        UserInactive.from_product_id(USER_GROUP_PRODUCT.product_id, CUSTOMER)


def test_each_lifecycle_requires_more_naming_the_missing_field():
    user = UserInactive.from_product_id(USER_INTERNAL_PRODUCT.product_id, CUSTOMER)
    with pytest.raises(LifecycleError, match=r"UserProvisioning \(provisioning\): UserBlockProvisioning.group."
                                             "group_name is required; UserBlockProvisioning.username is required"):
        UserProvisioning.from_other_lifecycle(user, SubscriptionLifecycle.PROVISIONING)
    group = UserGroupBlock(owner_subscription_id=uuid4(), group_name="Lab", group_id=7)
    user.user.group, user.user.username = group, "alice"
    provisioning = UserProvisioning.from_other_lifecycle(user, SubscriptionLifecycle.PROVISIONING)
    with pytest.raises(LifecycleError, match=r"User \(active\): UserBlock.user_id is required"):
        User.from_other_lifecycle(provisioning, SubscriptionLifecycle.ACTIVE)
    provisioning.user.user_id = 1
    active = User.from_other_lifecycle(provisioning, SubscriptionLifecycle.ACTIVE)
    assert type(SubscriptionModel.from_state(active.model_dump(mode="json"))) is User
    with pytest.raises(ValueError, match="less than or equal to 150"):
        active.user.age = 151
    with pytest.raises(ValueError, match="username must not start or end with whitespace"):
        active.user.username = "alice "
