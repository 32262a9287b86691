"""Group name rules: the params' JSON schema pattern and the domain model agree on every example."""

import re

import pytest
from pydantic import ValidationError

from usergroup.domain import UserGroupBlockInactive
from usergroup.domain.names import GROUP_NAME_MAX_LENGTH, GROUP_NAME_PATTERN, check_group_name, name_key
from usergroup.workflows.create_user_group import CreateUserGroupForm

ACCEPTED = [
    "Research Lab",
    "a",
    "x" * GROUP_NAME_MAX_LENGTH,
    "O'Brien \"quoted\" group",
    "Robert'); DROP TABLE subscriptions;--",
    "<script>alert('x')</script>",
    "$(rm -rf /) `id` ; | & \\",
    "Zürich Ωμέγα 研究室 Лаборатория مختبر",
    "emoji 👩‍🔬 group",
    "inner  spaces\u00a0ok",
]

REJECTED = [
    "",
    " ",
    "   ",
    " leading",
    "trailing ",
    "\tTab",
    "new\nline",
    "trailing newline\n",
    "nul\x00byte",
    "escape\x1b[31m",
    "del\x7f",
    "c1\x85control",
    "\u00a0nbsp-led",
    "x" * (GROUP_NAME_MAX_LENGTH + 1),
]


def schema_accepts(value: str) -> bool:
    """What Airflow checks: minLength, maxLength and `re.search` of the pattern (as jsonschema does)."""
    return 1 <= len(value) <= GROUP_NAME_MAX_LENGTH and re.search(GROUP_NAME_PATTERN, value) is not None


@pytest.mark.parametrize("name", ACCEPTED)
def test_accepted_names(name):
    assert schema_accepts(name)
    assert check_group_name(name) == name
    assert CreateUserGroupForm(group_name=name).group_name == name


@pytest.mark.parametrize("name", REJECTED)
def test_rejected_names(name):
    assert not schema_accepts(name)
    with pytest.raises(ValueError, match="group_name"):
        check_group_name(name)
    with pytest.raises(ValidationError, match="group_name"):
        UserGroupBlockInactive(group_name=name)


@pytest.mark.parametrize("value", [None, 1, 1.5, True, ["a"], {"a": 1}])
def test_non_strings_are_refused_by_the_form(value):
    with pytest.raises(ValidationError):
        CreateUserGroupForm(group_name=value)


def test_the_params_pattern_is_also_valid_javascript_syntax():
    # The trigger form checks the pattern in the browser: no Python-only syntax (\Z, (?P<..>), inline flags).
    assert "\\Z" not in GROUP_NAME_PATTERN and "(?P" not in GROUP_NAME_PATTERN and "(?i" not in GROUP_NAME_PATTERN


def test_names_compare_without_case():
    assert name_key("Research LAB") == name_key("research lab")
    assert name_key("STRASSE") == name_key("straße")
