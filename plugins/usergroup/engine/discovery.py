"""The one discovery of what the package declares: every workflow, schedule and bulk run under `usergroup.workflows`
(a package per product, a module per workflow), so no list of DAG ids is kept by hand."""

import importlib
import pkgutil
from functools import cache
from typing import Any

from usergroup.domain import SubscriptionModel, rules
from usergroup.engine.workflow import Bulk, Schedule, Workflow

WORKFLOWS = "usergroup.workflows"  # found by name: the engine imports no workflow


@cache
def declared() -> dict[str, Workflow | Schedule | Bulk]:
    """Every workflow and schedule declared in this package, by name (= DAG id)."""
    found: dict[str, Workflow | Schedule | Bulk] = {}
    package = importlib.import_module(WORKFLOWS)
    for module_info in pkgutil.walk_packages(package.__path__, prefix=f"{WORKFLOWS}."):
        module = importlib.import_module(module_info.name)
        found.update({w.name: w for w in vars(module).values() if isinstance(w, Workflow | Schedule | Bulk)})
    return found


def all_workflows() -> dict[str, Workflow]:
    return {name: w for name, w in declared().items() if isinstance(w, Workflow)}


def subscription_workflows(repo, sub: SubscriptionModel) -> dict[str, Any]:
    """orchestrator-core's `subscription_workflows`: what the workflows of the subscription's product may do
    with it now, and why not (the same rules the first task of each workflow applies)."""
    mine = [(w.name, w.title, w.target) for w in all_workflows().values()
            if w.product_type == sub.product.product_type]
    return rules.subscription_workflows(sub, sorted(mine), **repo.refusal_context(sub))
