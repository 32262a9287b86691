"""orchestrator-core's REST API for our products and workflows (mounted at /orchestrator/api)."""
