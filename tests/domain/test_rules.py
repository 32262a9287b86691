"""Domain: which workflows a subscription may run now, and why not (orchestrator-core's subscription_workflows)."""

from uuid import uuid4

import pytest

from usergroup.domain import USER_GROUP_PRODUCT, SubscriptionLifecycle, Target, UserGroupInactive
from usergroup.domain.rules import refusal, subscription_workflows

WORKFLOWS = [("create_user_group", "Create", Target.CREATE), ("modify_user_group", "Rename", Target.MODIFY),
             ("terminate_user_group", "Terminate", Target.TERMINATE), ("validate_user_group", "Validate",
                                                                        Target.VALIDATE)]


def sub(status: str, insync: bool) -> UserGroupInactive:
    s = UserGroupInactive.from_product_id(USER_GROUP_PRODUCT.product_id, uuid4())
    return s.model_copy(update={"status": SubscriptionLifecycle(status), "insync": insync})


@pytest.mark.parametrize(("status", "insync", "target", "reason", "message"), [
    ("active", True, Target.MODIFY, None, None),
    ("active", True, Target.TERMINATE, None, None),
    ("active", False, Target.MODIFY, "subscription.not_in_sync", "is out of sync; held by process P (x, failed)"),
    ("terminated", True, Target.MODIFY, "subscription.no_modify_invalid_status", "is terminated: it cannot be "
                                                                                  "modified"),
    ("terminated", True, Target.TERMINATE, "subscription.no_modify_invalid_status", "it cannot be terminated"),
    ("terminated", True, Target.VALIDATE, "subscription.no_modify_invalid_status", "it cannot be validated"),
    ("initial", False, Target.MODIFY, "subscription.no_modify_invalid_status", "is initial: it cannot be modified"),
    ("provisioning", False, Target.TERMINATE, "subscription.no_modify_invalid_status",
     "only one whose create failed or was aborted can be terminated"),
])
def test_refusal_names_the_rule(status, insync, target, reason, message):
    found = refusal(sub(status, insync), target, holders=["P (x, failed)"])
    assert (found and found[0]) == reason
    if message:
        assert message in found[1]


def test_a_failed_create_may_be_terminated_and_nothing_else():
    stranded = sub("provisioning", False)
    assert refusal(stranded, Target.TERMINATE, failed_create=True) is None
    assert refusal(stranded, Target.MODIFY, failed_create=True)[0] == "subscription.no_modify_invalid_status"


def test_out_of_sync_without_a_holder_says_an_operator_can_resync():
    assert "no unfinished process holds it: an operator can set it in sync" in refusal(
        sub("active", False), Target.VALIDATE)[1]


def test_in_use_blocks_terminate_only():
    used = sub("active", True)
    assert refusal(used, Target.TERMINATE, in_use_by=["S"])[0] == "subscription.no_modify_subscription_in_use_by_others"
    assert refusal(used, Target.MODIFY, in_use_by=["S"]) is None


def test_subscription_workflows_lists_each_target_with_its_reasons():
    view = subscription_workflows(sub("active", False), WORKFLOWS, holders=["P (x, failed)"])
    assert set(view) == {"create", "modify", "terminate", "system", "validate", "reason"}
    assert view["create"] == [] and view["reason"] == "subscription.not_in_sync"
    (modify,) = view["modify"]
    assert modify["name"] == "modify_user_group" and modify["reason"] == "subscription.not_in_sync"
    ok = subscription_workflows(sub("active", True), WORKFLOWS)
    assert "reason" not in ok and all("reason" not in w for t in ("modify", "terminate", "validate") for w in ok[t])
