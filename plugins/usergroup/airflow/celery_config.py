"""Celery's configuration for workers that run our tasks: Airflow's own, and what our tasks import imported by the
worker before it forks its pool (`AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS` names `CELERY_CONFIG`)."""

from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG
from celery.signals import import_modules

from usergroup.airflow.preload import preload

CELERY_CONFIG = DEFAULT_CELERY_CONFIG


@import_modules.connect
def preload_in_the_worker(*args, **kwargs) -> None:
    """As Airflow's own handler of this signal imports its operators: each task process of the worker's pool
    finds our workflows, the store's driver and both OSS/BSS clients imported (a LocalExecutor's scheduler does
    this in our listener's `on_starting`)."""
    preload()
