"""Helpers for the operations tests (tests/test_config_*.py): a private ingest worker for one test."""

import contextlib

from tests.support import stop_worker
from tests.test_courses_tasks import start_ingest_worker


def purge_queue(name):
    """Drop every task waiting in one Celery queue."""
    from config.celery import app

    with app.connection_for_write() as connection:
        connection.default_channel.queue_purge(name)


@contextlib.contextmanager
def private_ingest_worker(env, log_path):
    """A worker of its own on the ingest queue, started on an empty queue and stopped with what it left queued
    dropped, so no task of this test reaches a later test's worker."""
    purge_queue("ingest")
    worker = start_ingest_worker(env, log_path)
    try:
        yield worker
    finally:
        stop_worker(worker)
        purge_queue("ingest")


@contextlib.contextmanager
def fresh_database(prefix="tutor_scratch"):
    """A new, empty database in the test PostgreSQL server (its URL), dropped afterwards."""
    import os
    import uuid
    from urllib.parse import urlparse

    import psycopg

    server = urlparse(os.environ["DATABASE_URL"])
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = server._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server._replace(path=f"/{name}").geturl()
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
