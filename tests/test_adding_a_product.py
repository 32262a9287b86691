"""Adding a product is one domain module, one store mapping and a migration, plus its workflows and their DAG files
(the README's "Adding a product"): a toy product added that way to a copy of the package is created end to end by a
real `airflow dags test`, found by every discovery, and shown by the CLI, with nothing else edited."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from helpers import FAKE_OSSBSS_CONN, ROOT

pytestmark = pytest.mark.slow  # spawns Airflow processes (`airflow dags test`): make test, not make test-fast

DOMAIN = '''"""The Toy product: a label, one class per lifecycle, each stricter than the last."""

from uuid import UUID

from pydantic import BaseModel, ConfigDict

from usergroup.domain.lifecycle import SubscriptionLifecycle
from usergroup.domain.product import Product
from usergroup.domain.subscription import SubscriptionModel, register

TOY_PRODUCT = Product(product_id=UUID("7a0e0b8c-1d2e-4f30-8a4b-5c6d7e8f9a01"), name="Toy", description="Toy",
                      product_type="Toy", tag="TOY")


class ToyBlockInactive(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, defer_build=True)

    owner_subscription_id: UUID | None = None
    label: str | None = None


class ToyBlock(ToyBlockInactive):
    label: str


class ToyInactive(SubscriptionModel, is_base=True, lifecycle=[SubscriptionLifecycle.INITIAL]):
    toy: ToyBlockInactive


class Toy(ToyInactive, lifecycle=[SubscriptionLifecycle.PROVISIONING, SubscriptionLifecycle.ACTIVE]):
    toy: ToyBlock


register(ToyInactive, TOY_PRODUCT)
'''

MAPPING = '''"""The Toy's block in the store: `toy_blocks`."""

from typing import Any

from sqlalchemy import Column, ForeignKey, Select, String, Table, Uuid, select

from usergroup.domain import SubscriptionModel
from usergroup.store.mappings import ProductMapping
from usergroup.store.tables import metadata, subscriptions

toy_blocks = Table("toy_blocks", metadata,
                   Column("subscription_id", Uuid, ForeignKey(subscriptions.c.subscription_id), primary_key=True),
                   Column("label", String(255)))


class ToyMapping(ProductMapping):
    product_type = "Toy"
    block = "toy"
    table = toy_blocks

    def select(self) -> Select:
        return select(toy_blocks.c.subscription_id, toy_blocks.c.label)

    def to_block(self, row: Any) -> dict[str, Any]:
        return {"owner_subscription_id": row.subscription_id, "label": row.label}

    def to_row(self, sub: SubscriptionModel) -> dict[str, Any]:
        return {"label": sub.toy.label}
'''

MIGRATION = '''"""The Toy product and its block table.

Revision ID: 9001
Revises: {head}
"""

from datetime import UTC, datetime
from uuid import UUID

import sqlalchemy as sa
from alembic import context, op

revision = "9001"
down_revision = "{head}"


def upgrade() -> None:
    schema = context.config.attributes["db_schema"]
    prefix = f"{{schema}}." if schema else ""
    op.create_table("toy_blocks",
                    sa.Column("subscription_id", sa.Uuid, sa.ForeignKey(f"{{prefix}}subscriptions.subscription_id"),
                              primary_key=True),
                    sa.Column("label", sa.String(255)), schema=schema)
    products = sa.table("products", sa.column("product_id", sa.Uuid), sa.column("created_at", sa.DateTime(True)),
                        *(sa.column(c) for c in ("name", "description", "product_type", "tag", "status")),
                        schema=schema)
    op.bulk_insert(products, [{{"product_id": UUID("7a0e0b8c-1d2e-4f30-8a4b-5c6d7e8f9a01"), "name": "Toy",
                               "description": "Toy", "product_type": "Toy", "tag": "TOY", "status": "active",
                               "created_at": datetime.now(UTC)}}])
'''

WORKFLOW = '''"""The create Toy workflow, declared once."""

from typing import Annotated
from uuid import UUID, uuid5

from pydantic import BaseModel, ConfigDict, Field

from usergroup.domain.lifecycle import SubscriptionLifecycle, Target
from usergroup.domain.toy import Toy, ToyInactive
from usergroup.engine.generic_steps import store_process_subscription
from usergroup.engine.step import State, step
from usergroup.engine.workflow import create_workflow


class CreateToyForm(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)

    label: Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[A-Za-z]+$")]


@step("Create subscription", returns=("subscription", "subscription_id"))
def create_subscription(product_id: UUID, customer_id: UUID, process_id: UUID) -> State:
    sub = ToyInactive.from_product_id(product_id, customer_id, subscription_id=uuid5(process_id, "subscription"))
    return {"subscription": sub, "subscription_id": str(sub.subscription_id)}


@step("Initialize subscription", returns=("subscription",))
def initialize_subscription(subscription: ToyInactive, label: str) -> State:
    subscription.toy.label = label
    subscription.description = f"Toy {label}"
    return {"subscription": Toy.from_other_lifecycle(subscription, SubscriptionLifecycle.PROVISIONING)}


create_toy = create_workflow("create_toy", description="Create a Toy.", product_type="Toy", form=CreateToyForm,
                             steps=[create_subscription, store_process_subscription(Target.CREATE),
                                    initialize_subscription])
'''

DAG = '''"""create_toy."""

from usergroup.airflow.dags import workflow_dag
from usergroup.workflows.toy.create_toy import create_toy

dag = workflow_dag(create_toy)
'''


def _store_head() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from usergroup.store.migrate import MIGRATIONS

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(cfg).get_current_head()


def test_a_toy_product_added_as_the_readme_says_runs_end_to_end(tmp_path, airflow_db):
    plugins, dags = tmp_path / "plugins", tmp_path / "dags"
    shutil.copytree(ROOT / "plugins", plugins, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    pkg = plugins / "usergroup"
    added = {pkg / "domain/toy.py": DOMAIN, pkg / "store/mappings/toy.py": MAPPING,
             pkg / "store/migrations/versions/9001_toy.py": MIGRATION.format(head=_store_head()),
             pkg / "workflows/toy/__init__.py": '"""The Toy\'s workflows."""\n',
             pkg / "workflows/toy/create_toy.py": WORKFLOW, dags / "create_toy.py": DAG}
    for path, text in added.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    init = pkg / "domain/__init__.py"  # the one line that registers it
    init.write_text(init.read_text() + "\nimport usergroup.domain.toy  # noqa: E402,F401\n")

    env = {**os.environ, "PYTHONPATH": str(plugins), "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
           "AIRFLOW__CORE__PLUGINS_FOLDER": str(plugins),
           "AIRFLOW_CONN_USERGROUP_DEFAULT": json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "store.db")}),
           "AIRFLOW_CONN_USERGROUP_OSSBSS": FAKE_OSSBSS_CONN}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(args, capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)

    cli = (sys.executable, "-c", "import sys, usergroup; assert usergroup.__file__.startswith(sys.argv[1]), "
           "usergroup.__file__; from usergroup.interfaces.cli.main import main; sys.exit(main(sys.argv[2:]))",
           str(plugins))
    upgraded = run(*cli, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr[-3000:]

    ran = run(sys.executable, "-m", "airflow", "dags", "test", "create_toy", "--conf", '{"label": "Blue"}')
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    refused = run(sys.executable, "-m", "airflow", "dags", "test", "create_toy", "--conf", '{"label": "B1ue"}')
    assert refused.returncode != 0 and "label" in refused.stdout + refused.stderr

    listed = run(*cli, "subscriptions", "list", "--json")
    assert listed.returncode == 0, listed.stderr[-3000:]
    toys = [s for s in json.loads(listed.stdout) if s["product"] == "Toy"]
    assert len(toys) == 1, listed.stdout
    shown = run(*cli, "subscriptions", "show", toys[0]["subscription_id"], "--json")
    toy = json.loads(shown.stdout)
    assert (toy["status"], toy["insync"], toy["toy"]["label"]) == ("active", True, "Blue")
    assert [p["status"] for p in toy["processes"]] == ["completed"]
    assert [s["task_id"] for s in toy["processes"][0]["steps"]][-3:] == ["set_status", "resync", "done"]
