"""The User Group's workflows, one module each (orchestrator-core's workflows/user_group)."""
