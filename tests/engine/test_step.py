"""A step's arguments arrive typed by their annotations; a misspelled one fails where the workflow is declared."""

from uuid import UUID, uuid4

import pytest

from usergroup.domain import Target, UserGroupInactive
from usergroup.domain.user_group import USER_GROUP_PRODUCT
from usergroup.engine.step import StepContext, StepError, step
from usergroup.engine.workflow import Bulk, create_workflow
from usergroup.workflows.user_group.create_user_group import CreateUserGroupForm, create_subscription, create_user_group


def test_arguments_arrive_as_their_annotations_say():
    seen = {}

    @step("Look", returns=("looked",))
    def look(process_id: UUID, workflow_target: Target, subscription: UserGroupInactive, ctx: StepContext,
             age: int | None = None, raw=None):
        seen.update(process_id=process_id, target=workflow_target, subscription=subscription, ctx=ctx, age=age,
                    raw=raw)
        return {"looked": True}

    sub = UserGroupInactive.from_product_id(USER_GROUP_PRODUCT.product_id, uuid4())
    pid, context = uuid4(), StepContext(oss=object())
    assert look({"process_id": str(pid), "workflow_target": "MODIFY", "subscription": sub.model_dump(mode="json"),
                 "age": "7", "raw": ["as", "is"]}, context) == {"looked": True}
    assert seen["process_id"] == pid and type(seen["process_id"]) is UUID
    assert seen["target"] is Target.MODIFY
    assert type(seen["subscription"]) is UserGroupInactive and seen["subscription"] == sub
    assert seen["ctx"] is context and seen["age"] == 7 and seen["raw"] == ["as", "is"]


def test_a_value_the_annotation_refuses_names_the_parameter():
    @step("Look")
    def look(process_id: UUID):
        return {}

    with pytest.raises(StepError, match=r"step look: process_id='not-a-uuid': .*UUID"):
        look({"process_id": "not-a-uuid"})
    with pytest.raises(StepError, match="step look: 'process_id' is not in the state"):
        look({})


def test_a_step_returns_only_what_it_declares():
    @step("Leak", returns=("kept",))
    def leak():
        return {"kept": 1, "leaked": 2}

    with pytest.raises(StepError, match="step leak returned leaked, which it does not declare"):
        leak({})


def test_a_misspelled_parameter_fails_where_the_workflow_is_declared():
    @step("Provision", returns=("group_id",))
    def provision(subscription: UserGroupInactive, group_nmae: str, ctx: StepContext):
        return {}

    with pytest.raises(StepError, match="step provision takes group_nmae, which neither the process, the form nor "
                                        "an earlier step gives"):
        create_workflow("toy", "# Toy", "UserGroup", CreateUserGroupForm, [create_subscription, provision])


def test_a_parameter_an_earlier_step_returns_is_known_and_a_later_ones_is_not():
    @step("First", returns=("note",))
    def first(group_name: str):
        return {"note": group_name}

    @step("Second")
    def second(note: str):
        return {}

    create_workflow("toy", "# Toy", "UserGroup", CreateUserGroupForm, [create_subscription, first, second])
    with pytest.raises(StepError, match="step second takes note,"):
        create_workflow("toy", "# Toy", "UserGroup", CreateUserGroupForm, [create_subscription, second, first])


def test_a_bulk_prepares_only_steps_of_its_workflow():
    with pytest.raises(StepError, match="prepare names provision_usergroup, not a step of create_user_group"):
        Bulk("toys", "# Toys", create_user_group, CreateUserGroupForm, items=lambda params: [],
             prepare={"provision_usergroup": lambda states, oss: oss})
