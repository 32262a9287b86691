"""The OSS/BSS client interface and its fake, which hands out one stable group id per subscription."""

import hashlib
import os
from typing import Protocol
from uuid import UUID

FAIL_ENV = "USERGROUP_FAKE_OSS_FAIL"


class OssBssError(RuntimeError):
    pass


class OssBssClient(Protocol):
    def provision_user_group(self, subscription_id: UUID, group_name: str) -> int:
        """Create (or find) the group for this subscription; return its id. Must be idempotent."""


class FakeOssBss:
    """No real OSS/BSS: the group id is derived from the subscription id, so a retry gets the same one.
    Set USERGROUP_FAKE_OSS_FAIL=1 to make every call fail (to demonstrate a failure and its resume)."""

    def provision_user_group(self, subscription_id: UUID, group_name: str) -> int:
        if os.environ.get(FAIL_ENV, "") not in ("", "0"):
            raise OssBssError(f"fake OSS/BSS unavailable ({FAIL_ENV} is set): group {group_name!r} not provisioned")
        digest = hashlib.sha256(UUID(str(subscription_id)).bytes).digest()
        return int.from_bytes(digest[:4], "big") % 2_000_000_000 + 1
