"""The Airflow glue, the only package that imports Airflow: hooks, DAG rendering, task factories, runs, the listener."""
