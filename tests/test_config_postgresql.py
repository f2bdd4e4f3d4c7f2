"""config.postgresql: a pooled connection is checked by a round trip only when the server closed it or sent
something, and one the server ended (as a restart ends every connection) is never handed to a request."""

import select
from unittest import mock

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from config.postgresql.base import check_connection

pytestmark = pytest.mark.django_db(transaction=True)


def _checks():
    """A mock of psycopg_pool's round-trip check that still runs it, to count how often it is asked."""
    return mock.patch.object(ConnectionPool, "check_connection", side_effect=ConnectionPool.check_connection)


def _wait_until_readable(raw, seconds=30):
    """Wait (at most `seconds`) until the server's goodbye reached this connection's socket."""
    poller = select.poll()
    poller.register(raw.fileno(), select.POLLIN)
    assert poller.poll(seconds * 1000), "the server's end of the connection never arrived"


def _pid(connection):
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def test_the_project_s_backend_checks_the_pool_by_its_own_check():
    from django.db import connection

    assert connection.settings_dict["CONN_HEALTH_CHECKS"] and connection.pool is not None
    assert connection.pool._check is check_connection


@pytest.fixture
def one_connection():
    """The project's backend with a pool of one connection of its own (so a borrow must take that one)."""
    from django.db import connection

    from config.postgresql.base import DatabaseWrapper

    options = {**connection.settings_dict["OPTIONS"], "pool": {"min_size": 1, "max_size": 1, "timeout": 30}}
    wrapper = DatabaseWrapper({**connection.settings_dict, "OPTIONS": options}, alias="one-connection")
    yield wrapper
    wrapper.close()
    wrapper.close_pool()


def test_an_idle_healthy_connection_is_lent_without_a_round_trip(one_connection):
    first = _pid(one_connection)
    one_connection.close()  # back to the pool, as at the end of a request
    with _checks() as round_trips:
        assert _pid(one_connection) == first  # the same connection, lent again
    assert round_trips.call_count == 0


def test_a_connection_the_server_ended_is_replaced_and_the_next_query_works(one_connection):
    """pg_terminate_backend ends the server's side as a restart or crash does (FATAL message, socket closed):
    the next borrow checks it by a round trip, the pool drops it, and the query runs on a new connection."""
    pid = _pid(one_connection)
    raw = one_connection.connection
    one_connection.close()  # back to the pool, as at the end of a request
    with psycopg.connect(_dsn(one_connection), autocommit=True) as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone()[0]
    _wait_until_readable(raw)
    with _checks() as round_trips:
        assert _pid(one_connection) != pid  # no error reached the caller
    assert round_trips.call_count == 1
    assert raw.closed


def test_a_closed_connection_is_refused_without_asking_the_server():
    from django.db import connection

    spare = psycopg.connect(_dsn(connection))
    spare.close()
    with _checks() as round_trips, pytest.raises(psycopg.OperationalError):
        check_connection(spare)
    assert round_trips.call_count == 0


def _dsn(connection):
    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"postgresql://{auth}@{s['HOST']}:{s['PORT']}/{s['NAME']}"


def test_over_http_no_request_fails_after_the_server_ended_every_pooled_connection(worker_env, tmp_path):
    """The promise end to end: the web server (uvicorn, config.asgi) holds pooled connections; PostgreSQL ends them
    all, as a restart does; the next requests are answered as before, none with an error."""
    import time

    import httpx
    import psutil
    from django.db import connection

    from courses.models import ApiToken, Course, Membership
    from tests.support import make_member, web_server_process

    course = Course.objects.create(title="Kurs")
    lecturer, _session = make_member(course, Membership.INSTRUCTOR)
    _token, secret = ApiToken.issue(lecturer, name="t", course=course)
    url, auth = f"/api/v1/courses/{course.pk}/", {"Authorization": f"Bearer {secret}"}
    with web_server_process(worker_env, tmp_path / "web.log") as (base, _port, process), \
            httpx.Client(base_url=base, headers=auth, timeout=30) as http:
        assert [http.get(url).status_code for _ in range(3)] == [200] * 3  # the server's pool holds connections
        ports = {c.laddr.port for c in psutil.Process(process.pid).net_connections(kind="tcp")}
        servers = "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND client_port = ANY(%s)"
        with psycopg.connect(_dsn(connection), autocommit=True) as admin:
            ended = [pid for (pid,) in admin.execute(servers, [list(ports)]).fetchall()]
            assert ended, "the web server holds no pooled connection"
            for pid in ended:
                admin.execute("SELECT pg_terminate_backend(%s)", [pid])
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and admin.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", [ended]).fetchone()[0]:
                time.sleep(0.05)
        assert [http.get(url).status_code for _ in range(5)] == [200] * 5
