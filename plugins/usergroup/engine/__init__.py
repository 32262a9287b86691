"""The engine: the one runner of steps over the store and the OSS/BSS; no Airflow."""
