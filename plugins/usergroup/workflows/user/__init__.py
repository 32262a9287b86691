"""The User's workflows, one module each (orchestrator-core's workflows/user)."""
