"""usergroup: orchestrator-core's create UserGroup workflow on Apache Airflow 3."""
