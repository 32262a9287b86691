"""The workflows, one module each; `declared()` finds them, so no list of DAG ids is kept by hand."""

import importlib
import pkgutil
from functools import cache
from typing import Any

from usergroup.domain import SubscriptionModel, rules
from usergroup.workflow import Bulk, Schedule, Workflow


@cache
def declared() -> dict[str, Workflow | Schedule | Bulk]:
    """Every workflow and schedule declared in this package, by name (= DAG id)."""
    found: dict[str, Workflow | Schedule | Bulk] = {}
    for module_info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{module_info.name}")
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
