"""The listener settles a process only once Airflow's state change commits; a rollback leaves the trail alone."""

from types import SimpleNamespace

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from usergroup.airflow import listener


@pytest.fixture
def settled(monkeypatch):
    calls = []
    monkeypatch.setattr(listener, "ended_run", lambda dag_run, workflow, state, msg: (dag_run.run_id, state))
    monkeypatch.setattr(listener, "_settle", lambda workflow, run: calls.append(run))
    return calls


def airflow_session(monkeypatch) -> Session:
    session = Session(create_engine("sqlite://"))
    monkeypatch.setattr(listener, "object_session", lambda dag_run: session)
    session.execute(text("SELECT 1"))  # Airflow's transaction, in which the run's state changed
    return session


def test_settled_after_the_commit(monkeypatch, settled):
    session = airflow_session(monkeypatch)
    listener.on_dag_run_failed(SimpleNamespace(dag_id="create_user_group", run_id="r1"), "failed")
    assert settled == []  # not inside Airflow's transaction
    session.commit()
    assert settled == [("r1", "failed")]
    session.execute(text("SELECT 1"))
    session.commit()
    assert settled == [("r1", "failed")]  # once


def test_nothing_when_the_state_change_rolls_back(monkeypatch, settled):
    session = airflow_session(monkeypatch)
    listener.on_dag_run_success(SimpleNamespace(dag_id="create_user_group", run_id="r2"), "marked")
    session.rollback()  # e.g. a deadlock in the api-server: the run was not marked
    session.execute(text("SELECT 1"))
    session.commit()
    assert settled == []


def test_other_dags_are_not_ours(monkeypatch, settled):
    session = airflow_session(monkeypatch)
    listener.on_dag_run_failed(SimpleNamespace(dag_id="someone_elses_dag", run_id="r3"), "failed")
    session.commit()
    assert settled == []
