"""Group names compare without the joiners and selectors that render as nothing (removed before composing),
in NFKC (fullwidth letters, non-breaking and other spaces fold to their plain look-alikes): recompute each
claimed name's key, so such look-alike twins cannot coexist.

Names themselves are not rewritten. Two existing groups that are already such twins keep their old keys
(the migration says so): the uniqueness check refuses any new twin of either.

Revision ID: 0005
Revises: 0004
"""

import logging
import re
import unicodedata

import sqlalchemy as sa
from alembic import context, op

revision = "0005"
down_revision = "0004"

log = logging.getLogger("alembic.runtime.migration")
IGNORED = re.compile("[\u200d\u034f\u17b4\u17b5\u180b-\u180d\u180f\ufe00-\ufe0f\U000e0100-\U000e01ef]")


def nfkc_key(name: str) -> str:  # usergroup.domain.names.name_key, as of this revision
    value = unicodedata.normalize("NFKC", IGNORED.sub("", name))
    return re.sub(r"\s", " ", unicodedata.normalize("NFKC", value.casefold()))


def upgrade() -> None:
    blocks = sa.table("user_group_blocks", sa.column("subscription_id", sa.Uuid), sa.column("customer_id", sa.Uuid),
                      sa.column("group_name", sa.String), sa.column("name_key", sa.String),
                      schema=context.config.attributes["db_schema"])
    conn = op.get_bind()
    rows = conn.execute(sa.select(blocks).where(blocks.c.name_key.is_not(None))).all()
    taken = {(r.customer_id, r.name_key) for r in rows}
    for r in rows:
        key = nfkc_key(r.group_name)
        if key == r.name_key:
            continue
        if (r.customer_id, key) in taken:
            log.warning("subscription %s: group name %r has a look-alike twin among the customer's groups; its "
                        "key stays as it was", r.subscription_id, r.group_name)
            continue
        conn.execute(blocks.update().where(blocks.c.subscription_id == r.subscription_id).values(name_key=key))
        taken.discard((r.customer_id, r.name_key))
        taken.add((r.customer_id, key))
