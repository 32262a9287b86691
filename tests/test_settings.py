"""Every knob in one typed object, read from the environment once per process."""

from datetime import timedelta

import pytest

from usergroup.settings import SettingsError, settings


def test_the_defaults():
    s = settings()
    assert s.chunk_size == 500 and s.max_items == 10_000 and s.store_pool == "usergroup_store"
    assert s.fake_oss_fail is False and s.fake_oss_refuse is None and s.fake_oss_delay == 0
    assert s.task_defaults["pool"] == "usergroup_store" and s.ossbss_task_options["retries"] == 6


def test_read_once_per_process(knobs, monkeypatch):
    knobs(USERGROUP_CHUNK_SIZE="10")
    assert settings().chunk_size == 10
    monkeypatch.setenv("USERGROUP_CHUNK_SIZE", "20")  # a process does not see a later change
    assert settings().chunk_size == 10 and settings() is settings()


def test_each_knob_by_its_environment_variable(knobs):
    knobs(USERGROUP_FAKE_OSS_FAIL="1", USERGROUP_FAKE_OSS_REFUSE="^No ", USERGROUP_FAKE_OSS_DELAY="0.5",
          USERGROUP_BULK_TIMEOUT="7200", USERGROUP_TASK_TIMEOUT="PT10M", USERGROUP_STORE_POOL="ours")
    s = settings()
    assert s.fake_oss_fail is True and s.fake_oss_refuse.search("No way") and s.fake_oss_delay == 0.5
    assert s.bulk_timeout == timedelta(hours=2) and s.task_timeout == timedelta(minutes=10)
    assert s.task_defaults["pool"] == "ours"


def test_an_empty_variable_is_the_default(knobs):
    knobs(USERGROUP_FAKE_OSS_FAIL="", USERGROUP_CHUNK_SIZE="")
    assert settings().fake_oss_fail is False and settings().chunk_size == 500


def test_a_bad_value_names_the_variable(knobs):
    knobs(USERGROUP_CHUNK_SIZE="0", USERGROUP_FAKE_OSS_REFUSE="(")
    with pytest.raises(SettingsError) as exc:
        settings()
    assert "USERGROUP_CHUNK_SIZE='0': Input should be greater than 0" in str(exc.value)
    assert "USERGROUP_FAKE_OSS_REFUSE='(': Input should be a valid regular expression" in str(exc.value)
