"""The database extension: engine, sessions and Alembic migrations."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from collections.abc import Iterator

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from flask import Flask, current_app
from sqlalchemy import event
from sqlalchemy.orm import Session, scoped_session, sessionmaker

log = logging.getLogger(__name__)

MIGRATIONS_DIR = os.path.join(os.path.dirname(__file__), "migrations")


def default_database_url(instance_path: str) -> str:
    return "sqlite:///" + os.path.join(instance_path, "callcard.db")


def normalize_url(url: str) -> str:
    """Use the psycopg 3 driver for `postgres://` and `postgresql://` URLs."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def create_engine(url: str) -> sa.Engine:
    """Create an engine; SQLite files get WAL and a busy timeout for several processes."""
    url = normalize_url(url)
    if not url.startswith("sqlite"):
        return sa.create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)

    engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _configure_sqlite(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # In WAL mode NORMAL keeps the file consistent; a power cut may lose the last commits.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return engine


class Database:
    """SQLAlchemy engine and a scoped session per request or thread."""

    def __init__(self, app: Flask | None = None):
        self.engine: sa.Engine | None = None
        self.session: scoped_session | None = None
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        url = app.config.get("DATABASE_URL") or default_database_url(app.instance_path)
        app.config["SQLALCHEMY_URL"] = normalize_url(url)
        self.engine = create_engine(url)
        self.session = scoped_session(sessionmaker(bind=self.engine, expire_on_commit=False))
        app.extensions["callcard.db"] = self

        @app.teardown_appcontext
        def _remove_session(_exc):
            self.session.remove()

    @contextlib.contextmanager
    def new_session(self) -> Iterator[Session]:
        """Open a session outside the request's scoped one, e.g. in a worker thread."""
        session = Session(self.engine, expire_on_commit=False)
        try:
            yield session
        finally:
            session.close()

    def alembic_config(self) -> AlembicConfig:
        config = AlembicConfig()
        config.set_main_option("script_location", MIGRATIONS_DIR)
        config.attributes["engine"] = self.engine
        return config

    def upgrade(self, revision: str = "head", lock_path: str | None = None) -> None:
        """Apply the Alembic migrations up to `revision`.

        `lock_path` names a file that serializes processes of one installation which
        start together (gunicorn workers on the embedded SQLite database).
        """
        if lock_path is None:
            command.upgrade(self.alembic_config(), revision)
            return
        with open(lock_path, "w") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                command.upgrade(self.alembic_config(), revision)
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)

    def current_revision(self) -> str | None:
        with self.engine.connect() as connection:
            if not sa.inspect(connection).has_table("alembic_version"):
                return None
            return connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def is_sqlite_lock_error(error: Exception) -> bool:
    """Tell whether `error` is SQLite's "database is locked", which a new transaction may avoid."""
    return "database is locked" in str(getattr(error, "orig", error))


def get_db() -> Database:
    return current_app.extensions["callcard.db"]


def session() -> Session:
    """Return the current request's (or thread's) session."""
    return get_db().session()
