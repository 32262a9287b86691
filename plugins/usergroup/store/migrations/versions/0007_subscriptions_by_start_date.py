"""The Subscriptions page lists subscriptions newest first, a page at a time: an index in that order, so a page of
100,000 does not sort them all.

Revision ID: 0007
Revises: 0006
"""

from alembic import context, op

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    op.create_index("ix_subscriptions_start_date", "subscriptions", ["start_date", "subscription_id"],
                    schema=context.config.attributes["db_schema"])

