"""The one rate limiter (config.ratelimit): a sliding window per key in Redis, shared by the API's throttle and
the chat's question limit."""

import uuid

import pytest

from config import ratelimit


def test_a_key_gets_its_limit_in_any_window_and_refused_requests_do_not_count():
    key = f"test:{uuid.uuid4().hex}"
    assert ratelimit.hit(key, 2, 60, now=1000.0) == (True, 0.0)
    assert ratelimit.hit(key, 2, 60, now=1010.0) == (True, 0.0)
    allowed, wait = ratelimit.hit(key, 2, 60, now=1030.0)
    assert not allowed and wait == pytest.approx(30.0)  # until the first request leaves the window
    for moment in (1031.0, 1045.0, 1059.0):  # refused ones are not counted: they do not push the window on
        assert ratelimit.hit(key, 2, 60, now=moment)[0] is False
    assert ratelimit.hit(key, 2, 60, now=1060.5) == (True, 0.0)  # a window that slid past the first one
    allowed, wait = ratelimit.hit(key, 2, 60, now=1061.0)
    assert not allowed and wait == pytest.approx(9.0)  # the second (at 1010) is still in it
    assert ratelimit.hit(f"other:{key}", 2, 60, now=1061.0) == (True, 0.0)  # each key has its own count


def test_a_limit_holds_across_a_minute_s_boundary():
    """A fixed window per clock minute let 2×limit through around xx:59–xx:00; the sliding one does not."""
    key = f"test:{uuid.uuid4().hex}"
    assert [ratelimit.hit(key, 3, 60, now=moment)[0] for moment in (1199.0, 1199.5, 1199.9)] == [True] * 3
    assert [ratelimit.hit(key, 3, 60, now=moment)[0] for moment in (1200.0, 1200.1, 1230.0)] == [False] * 3


def test_a_limit_of_nothing_refuses_everything_for_a_whole_window():
    key = f"test:{uuid.uuid4().hex}"
    assert ratelimit.hit(key, 0, 60, now=1000.0) == (False, 60.0)
