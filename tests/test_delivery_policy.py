"""The retry policy, walked through without a clock or a network (fedsph.federation.delivery.decide)."""

import random
from datetime import datetime, timedelta

import pytest

from fedsph.federation.delivery import MAX_ATTEMPTS, backoff, decide, parse_retry_after, pause_for

NOW = datetime(2026, 11, 23, 12, 0, 0)


@pytest.mark.parametrize("status", [200, 201, 202, 204])
def test_2xx_is_sent(status):
    assert decide(status, None, 1, NOW).status == "sent"


def test_410_means_the_inbox_is_gone_for_good():
    assert decide(410, None, 1, NOW).status == "gone"


@pytest.mark.parametrize("status", [400, 403, 404, 405, 413, 422])
def test_other_4xx_are_final(status):
    outcome = decide(status, None, 1, NOW)
    assert outcome.status == "failed" and not outcome.host_failed


@pytest.mark.parametrize("status", [None, 401, 408, 429, 500, 502, 503])
def test_network_errors_5xx_and_401_408_429_are_retried(status):
    outcome = decide(status, None, 1, NOW)
    assert outcome.status == "pending"
    assert outcome.next_attempt_at > NOW
    # Only an unreachable or broken host counts against the host; a 401 or 429 is an answer.
    assert outcome.host_failed == (status is None or status >= 500)


def test_retries_double_with_jitter_and_are_capped():
    rng = random.Random(7)
    delays = [backoff(n, 30, rng).total_seconds() for n in range(1, 16)]
    for n, delay in enumerate(delays[:10], start=1):
        assert 30 * 2 ** (n - 1) * 0.8 <= delay <= 30 * 2 ** (n - 1) * 1.2
    assert max(delays) <= 12 * 3600 * 1.2


def test_retries_go_on_for_about_two_days_then_stop():
    total, attempts, now = timedelta(0), 0, NOW
    while True:
        attempts += 1
        outcome = decide(None, None, attempts, now)
        if outcome.status != "pending":
            break
        total += outcome.next_attempt_at - now
        now = outcome.next_attempt_at
    assert outcome.status == "failed" and attempts == MAX_ATTEMPTS
    assert timedelta(hours=30) < total < timedelta(hours=60)


def test_retry_after_in_seconds_and_as_a_date_is_honoured():
    outcome = decide(429, "3600", 1, NOW)
    assert outcome.next_attempt_at >= NOW + timedelta(seconds=3600)
    outcome = decide(503, "Mon, 23 Nov 2026 15:00:00 GMT", 1, NOW)
    assert outcome.next_attempt_at >= datetime(2026, 11, 23, 15, 0, 0)


def test_retry_after_is_bounded_and_garbage_is_ignored():
    assert parse_retry_after("999999999", NOW) == NOW + timedelta(days=1)
    assert parse_retry_after("soon", NOW) is None
    assert decide(429, "soon", 1, NOW).status == "pending"


def test_a_host_is_paused_only_after_repeated_failures_and_not_forever():
    assert pause_for(1, 30) is None and pause_for(4, 30) is None
    assert pause_for(5, 30) == timedelta(seconds=30)
    assert pause_for(6, 30) == timedelta(seconds=60)
    assert pause_for(100, 30) == timedelta(hours=6)
