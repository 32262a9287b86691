"""The name rules (a group's name, a user's username), shared by the trigger form's JSON schema and the domain
model: the types `GroupName` and `Username` carry both."""

import re
import unicodedata
from functools import partial
from typing import Annotated

from pydantic import AfterValidator

from usergroup.domain.schema import FieldSchema

GROUP_NAME_MAX_LENGTH = 255  # code points, on every path (Python's len, jsonschema's maxLength)
# The compared form (`name_key`) is stored in a unique index: a few letters fold to many (U+FDFA to 18).
NAME_KEY_MAX_LENGTH, NAME_KEY_MAX_BYTES = 1024, 2000

# Invisible or spoofing characters, refused anywhere: Unicode's format characters (Cf: zero-width spaces and
# joiners, bidi controls and isolates, the byte-order mark, tags...; all of Unicode 14, the zero-width joiner
# aside), the line and paragraph separators (Zl, Zp), and the blank "letters" (Hangul fillers, braille blank).
_FORMAT = ("\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b\u200c\u200e\u200f\u2028-\u202e"
           "\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\U000110bd\U000110cd\U00013430-\U00013438"
           "\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f")
_BLANK = "\u115f\u1160\u3164\uffa0\u2800\ufdd0-\ufdef\ufffe\uffff"  # and the BMP's noncharacters
_ZWJ = "\u200d"  # allowed only inside a sequence (emoji like 👩‍🔬, Indic scripts): between two visible characters
# Variation selectors and other joiners that render as nothing: allowed after a character, ignored in the key.
_SELECTORS = "\u034f\u17b4\u17b5\u180b-\u180d\u180f\ufe00-\ufe0f\U000e0100-\U000e01ef"
_NOT_AT_START = f"\u0300-\u036f{_SELECTORS}"  # combining marks, selectors

# For Python's `re.search` (Airflow's params; the trigger form checks only the length): no control character
# (C0, DEL, C1; this also closes `$` matching before a final newline), no format, separator or blank character,
# a zero-width joiner only between two non-space characters, and a visible first and last character.
GROUP_NAME_PATTERN = (
    rf"^(?![\s\S]*[\x00-\x1f\x7f-\x9f\ud800-\udfff{_FORMAT}{_BLANK}])(?![\s\S]*(?:\s{_ZWJ}|{_ZWJ}\s|{_ZWJ}{_ZWJ}))"
    rf"[^\s{_ZWJ}{_NOT_AT_START}](?:[\s\S]*[^\s{_ZWJ}])?$"
)

_NAME_RULES = (
    f"1 to {GROUP_NAME_MAX_LENGTH} characters (the form counts an emoji as 2, Airflow as 1), no leading or "
    "trailing whitespace, no control, invisible or direction-changing characters; unique (ignoring case, "
    "Unicode composition and width, and invisible joiners) among "
)
GROUP_NAME_RULES = _NAME_RULES + "the customer's user groups."
USERNAME_RULES = _NAME_RULES + "the group's users."

_PATTERN = re.compile(GROUP_NAME_PATTERN)
_INVISIBLE = re.compile(f"[{_FORMAT}{_BLANK}]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def invisible(text: str) -> str | None:
    """The first character of `text` that shows as nothing, breaks the line or changes direction, if any."""
    found = _INVISIBLE.search(text)
    return found.group() if found else next(
        (c for c in text if unicodedata.category(c) in ("Cc", "Cf", "Co", "Cs", "Cn", "Zl", "Zp")), None)


def check_name(value: str, field: str = "group_name") -> str:
    """The name in Unicode NFC if it is a valid name, else ValueError saying which rule of `field` it breaks."""
    if not isinstance(value, str):
        raise ValueError(f"{field} must be a string, not {type(value).__name__}")
    value = unicodedata.normalize("NFC", value)  # Café composed or decomposed is one name
    if not value:
        raise ValueError(f"{field} must not be empty")
    if len(value) > GROUP_NAME_MAX_LENGTH:
        raise ValueError(f"{field} is {len(value)} characters long, the maximum is {GROUP_NAME_MAX_LENGTH}")
    if _CONTROL.search(value):
        raise ValueError(f"{field} must not contain control characters")
    if surrogate := _SURROGATE.search(value):
        raise ValueError(f"{field} must not contain a lone surrogate: U+{ord(surrogate.group()):04X} at position "
                         f"{surrogate.start() + 1} (not a character: text that was not valid UTF-16 or UTF-8)")
    if found := _INVISIBLE.search(value):
        c = found.group()
        raise ValueError(f"{field} must not contain invisible or direction-changing characters: U+{ord(c):04X} "
                         f"{unicodedata.name(c, '')} at position {found.start() + 1}".rstrip())
    if value != value.strip():
        raise ValueError(f"{field} must not start or end with whitespace")
    if not _PATTERN.search(value):
        raise ValueError(f"{field} must start and end with a visible character (a zero-width joiner only "
                         "between two visible characters)")
    key = name_key(value)
    if len(key) > NAME_KEY_MAX_LENGTH or len(key.encode()) > NAME_KEY_MAX_BYTES:
        raise ValueError(f"{field} is too long as it is compared: its look-alike folding (NFKC, case) makes it "
                         f"{len(key)} characters, {len(key.encode())} bytes (at most {NAME_KEY_MAX_LENGTH} "
                         f"characters and {NAME_KEY_MAX_BYTES} bytes)")
    return value


def check_group_name(value: str) -> str:
    return check_name(value, "group_name")


_IGNORED_IN_KEY = re.compile(f"[{_ZWJ}{_SELECTORS}]")  # render as nothing between letters: "A\u200dB" is "AB"


def name_key(value: str) -> str:
    """The form under which names are compared for uniqueness: without the joiners and selectors that render as
    nothing (removed first, so a mark they separated composes as it would without them), in NFKC (composed,
    fullwidth letters as their ASCII look-alikes, a non-breaking space as a space), case-folded, every space a
    plain one: a look-alike that differs only by those is the same name."""
    value = unicodedata.normalize("NFKC", _IGNORED_IN_KEY.sub("", value))
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", value.casefold()))


_SPACE = re.compile(r"\s")


# What the trigger form checks of a name before a run exists (code points; the rest is `check_name`'s).
_NAME_SCHEMA = FieldSchema(minLength=1, maxLength=GROUP_NAME_MAX_LENGTH, pattern=GROUP_NAME_PATTERN)
GroupName = Annotated[str, AfterValidator(check_group_name), _NAME_SCHEMA]
Username = Annotated[str, AfterValidator(partial(check_name, field="username")), _NAME_SCHEMA]
