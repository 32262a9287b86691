"""Group name rules: the params' JSON schema pattern and the domain model agree on every example."""

import re
import unicodedata

import pytest
from pydantic import ValidationError

from usergroup.domain import UserGroupBlockInactive
from usergroup.domain.names import GROUP_NAME_MAX_LENGTH, GROUP_NAME_PATTERN, check_group_name, name_key
from usergroup.workflows.user_group.create_user_group import CreateUserGroupForm

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
    "I \u2764\ufe0f NY",  # a variation selector after an emoji
    "Cafe\u0301",  # decomposed: valid, stored composed (NFC)
    "\U0001f469\u200d\U0001f469\u200d\U0001f467 family",
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
    # invisible and spoofing characters (Unicode Cf, Zl, Zp) and names with nothing visible
    "\u200b", "\u200b\u200b\u200b", "Lab\u200b", "\u202e", "Lab\u202egpj.exe", "\ufeffLab", "a\u2028b",
    "a\u2029b", "\u2066isolate\u2069", "soft\u00adhyphen", "\u200dLab", "Lab\u200d", "a \u200d b",
    "\u3164", "Lab\u3164", "\u2800", "\ufe0fLab", "tag\U000e0041", "\u061cArabic mark", "\u0301",
    "\u0301x", "non\uffffchar",
    "Bad\ud800", "\udfffx",  # lone surrogates: not characters at all
]


def schema_accepts(value: str) -> bool:
    """What Airflow checks: minLength, maxLength and `re.search` of the pattern (as jsonschema does)."""
    return 1 <= len(value) <= GROUP_NAME_MAX_LENGTH and re.search(GROUP_NAME_PATTERN, value) is not None


@pytest.mark.parametrize("name", ACCEPTED)
def test_accepted_names(name):
    assert schema_accepts(name)
    assert check_group_name(name) == unicodedata.normalize("NFC", name)
    assert CreateUserGroupForm(group_name=name).group_name == unicodedata.normalize("NFC", name)


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


def test_the_refused_set_is_every_format_and_separator_character():
    """The pattern's list is Unicode's Cf, Zl and Zp (this Python's Unicode), the zero-width joiner aside."""
    import sys

    for code in range(sys.maxunicode + 1):
        c = chr(code)
        if unicodedata.category(c) in ("Cf", "Zl", "Zp") and c != "\u200d":
            assert not schema_accepts(f"a{c}b"), f"U+{code:04X}"
            with pytest.raises(ValueError, match="invisible or direction-changing"):
                check_group_name(f"a{c}b")


def test_names_are_stored_composed_and_nfc_nfd_twins_are_one_name():
    composed, decomposed = "Caf\u00e9", "Cafe\u0301"
    assert check_group_name(decomposed) == composed
    assert CreateUserGroupForm(group_name=decomposed).group_name == composed
    assert name_key(composed) == name_key(decomposed) == name_key("CAFE\u0301")


def test_length_is_counted_in_code_points_on_every_path():
    emoji = "\U0001f52c" * GROUP_NAME_MAX_LENGTH  # 255 code points, 510 UTF-16 units
    assert schema_accepts(emoji) and check_group_name(emoji) == emoji
    assert not schema_accepts(emoji + "x")
    with pytest.raises(ValueError, match="256 characters long"):
        check_group_name(emoji + "x")


def test_look_alikes_made_with_joiners_or_selectors_are_the_same_name():
    assert name_key("A\u200dB") == name_key("AB") == name_key("a\ufe0fb")
    assert name_key("\U0001f469\u200d\U0001f52c") == name_key("\U0001f469\U0001f52c")


def test_names_compare_without_case():
    assert name_key("Research LAB") == name_key("research lab")
    assert name_key("STRASSE") == name_key("straße")


def test_a_name_whose_compared_form_outgrows_the_index_is_refused():
    from usergroup.domain.names import check_name

    assert check_group_name("\ufdfa" * 56) == "\ufdfa" * 56  # 1008 characters as compared: fits
    with pytest.raises(ValueError, match=r"group_name is too long as it is compared: .* \(at most 1024 characters"):
        check_group_name("\ufdfa" * 57)
    with pytest.raises(ValueError, match="username is too long as it is compared"):
        check_name("\ufdfa" * 57, "username")
