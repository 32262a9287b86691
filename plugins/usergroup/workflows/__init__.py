"""The workflows, one module each; `all_workflows()` finds them, so no list of DAG ids is kept by hand."""

import importlib
import pkgutil
from functools import cache

from usergroup.workflow import Workflow


@cache
def all_workflows() -> dict[str, Workflow]:
    """Every workflow declared in this package, by name (= DAG id)."""
    found: dict[str, Workflow] = {}
    for module_info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        found.update({w.name: w for w in vars(module).values() if isinstance(w, Workflow)})
    return found
