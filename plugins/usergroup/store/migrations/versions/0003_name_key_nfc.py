"""Group names compare in Unicode NFC, without zero-width joiners and variation selectors: recompute each
claimed name's key, so look-alike twins (NFC/NFD, "A\u200dB"/"AB") cannot coexist.

Names themselves are not rewritten. Two existing groups that are already such twins keep their old keys
(the migration says so): the uniqueness check refuses any new twin of either.

Revision ID: 0003
Revises: 0002
"""

import logging
import re
import unicodedata

import sqlalchemy as sa
from alembic import context, op

revision = "0003"
down_revision = "0002"

log = logging.getLogger("alembic.runtime.migration")


def nfc_key(name: str) -> str:  # usergroup.domain.names.name_key, as of this revision
    key = unicodedata.normalize("NFC", unicodedata.normalize("NFC", name).casefold())
    return re.sub("[\u200d\ufe00-\ufe0f]", "", key)


def upgrade() -> None:
    blocks = sa.table("user_group_blocks", sa.column("subscription_id", sa.Uuid), sa.column("customer_id", sa.Uuid),
                      sa.column("group_name", sa.String), sa.column("name_key", sa.String),
                      schema=context.config.attributes["db_schema"])
    conn = op.get_bind()
    rows = conn.execute(sa.select(blocks).where(blocks.c.name_key.is_not(None))).all()
    taken = {(r.customer_id, r.name_key) for r in rows}
    for r in rows:
        key = nfc_key(r.group_name)
        if key == r.name_key:
            continue
        if (r.customer_id, key) in taken:
            log.warning("subscription %s: group name %r has a Unicode twin among the customer's groups; its key "
                        "stays as it was", r.subscription_id, r.group_name)
            continue
        conn.execute(blocks.update().where(blocks.c.subscription_id == r.subscription_id).values(name_key=key))
        taken.discard((r.customer_id, r.name_key))
        taken.add((r.customer_id, key))
