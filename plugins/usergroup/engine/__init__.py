"""The engine: steps, workflow declarations, the generic steps, the one runner, settling a run's processes;
no Airflow."""
