"""The Subscriptions pages inside Airflow's UI: server-rendered HTML from the plugin's app, behind Airflow's login."""
