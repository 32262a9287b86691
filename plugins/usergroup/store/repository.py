"""The unit of work: one connection, one transaction; each aggregate's queries in a module of its own."""

from collections.abc import Iterator
from contextlib import contextmanager
from uuid import UUID

from sqlalchemy import Connection, Engine

from usergroup.domain.product import Product
from usergroup.store.events import Events
from usergroup.store.insync import InSyncLock
from usergroup.store.names import Names
from usergroup.store.processes import Processes
from usergroup.store.products import Products
from usergroup.store.search import Search
from usergroup.store.subscriptions import Subscriptions
from usergroup.store.trail import Trail


class Store:
    """The store behind one engine. `transaction()` is the unit of work: one repository, one commit."""

    def __init__(self, engine: Engine):
        self.engine = engine

    @contextmanager
    def transaction(self) -> Iterator["Repository"]:
        with self.engine.begin() as conn:
            yield Repository(conn)

    @contextmanager
    def rolled_back(self) -> Iterator["Repository"]:
        """A repository whose writes are undone: to ask what a step would refuse, changing nothing."""
        with self.engine.connect() as conn, conn.begin() as tx:
            yield Repository(conn)
            tx.rollback()


class Repository(Products, Subscriptions, Search, Names, InSyncLock, Processes, Trail, Events):
    """Every operation the steps, the runner and the interfaces need, on one connection (one transaction)."""

    def __init__(self, conn: Connection):
        self.conn = conn
        self._products: dict[UUID, Product] | None = None
