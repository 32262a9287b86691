"""The fake OSS/BSS: provision, rename, remove and read a group, each idempotent; drift behind the store's back."""

from uuid import uuid4

import pytest

from usergroup.provisioning import FAIL_ENV, NotFoundError, OssBssError


def test_every_call_is_idempotent_and_logged_once(oss):
    sid = uuid4()
    group_id = oss.provision_user_group(sid, "Lab")
    assert oss.provision_user_group(sid, "Lab") == group_id
    assert oss.rename_user_group(sid, "New Lab") is True
    assert oss.rename_user_group(sid, "New Lab") is False  # a retried rename does nothing twice
    assert oss.read_user_group(sid) == {"group_id": group_id, "group_name": "New Lab"}
    assert oss.deprovision_user_group(sid) is True
    assert oss.deprovision_user_group(sid) is False
    assert oss.read_user_group(sid) is None
    assert [(c["action"], c["group_name"]) for c in oss.changes(sid)] == [
        ("provision", "Lab"), ("rename", "New Lab"), ("remove", None)]


def test_drift_changes_or_removes_a_group_behind_the_stores_back(oss):
    sid = uuid4()
    group_id = oss.provision_user_group(sid, "Lab")
    assert oss.drift(sid, group_name="Elsewhere") == {"group_id": group_id, "group_name": "Lab"}
    assert oss.read_user_group(sid)["group_name"] == "Elsewhere"
    oss.drift(sid, remove=True)
    assert oss.read_user_group(sid) is None
    assert [c["action"] for c in oss.changes(sid)] == ["provision", "drift", "drift"]
    with pytest.raises(NotFoundError, match=f"no group for subscription {sid}"):
        oss.drift(sid, remove=True)
    with pytest.raises(ValueError, match="not both"):
        oss.drift(sid, group_name="X", remove=True)


def test_renaming_a_group_it_does_not_hold_is_a_permanent_error(oss):
    with pytest.raises(NotFoundError, match="nothing to rename"):
        oss.rename_user_group(uuid4(), "X")
    assert issubclass(NotFoundError, ValueError)  # the adapter fails the task at once: no retry cures it


def test_an_unavailable_oss_fails_every_call(oss, monkeypatch):
    monkeypatch.setenv(FAIL_ENV, "1")
    for call in (lambda: oss.provision_user_group(uuid4(), "X"), lambda: oss.rename_user_group(uuid4(), "X"),
                 lambda: oss.deprovision_user_group(uuid4()), lambda: oss.read_user_group(uuid4())):
        with pytest.raises(OssBssError, match="unavailable"):
            call()

