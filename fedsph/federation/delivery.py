"""Who receives an activity, and what to do after each attempt to deliver it.

The retry policy is a pure function so tests can walk through it without a clock or a network.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

from fedsph.core.numbers import parse_number

# About two days of retries: 30 s, 1 min, 2 min, … doubling, capped at 12 h between tries.
MAX_ATTEMPTS = 14
MAX_DELAY = timedelta(hours=12)
# Like Mastodon (app/workers/activitypub/delivery_worker.rb) we retry these 4xx; the rest are final.
RETRYABLE_4XX = {401, 408, 429}
# Consecutive failures after which a host is paused rather than tried for every delivery.
PAUSE_AFTER_FAILURES = 5
MAX_PAUSE = timedelta(hours=6)


@dataclass(frozen=True)
class Outcome:
    status: str  # sent, pending (retry), failed, gone
    next_attempt_at: datetime | None = None
    host_failed: bool = False


def backoff(attempts: int, base_seconds: float, rng: random.Random | None = None) -> timedelta:
    """Exponential backoff with ±20 % jitter, so many failed deliveries do not retry in step."""
    rng = rng or random
    exponent = min(max(attempts - 1, 0), 30)  # capped first so that 2**n cannot overflow timedelta
    delay = min(timedelta(seconds=base_seconds * 2 ** exponent), MAX_DELAY)
    return delay * rng.uniform(0.8, 1.2)


def parse_retry_after(value: str | None, now: datetime) -> datetime | None:
    if not value:
        return None
    value = value.strip()
    seconds = parse_number(value)
    if seconds is not None:
        return now + timedelta(seconds=min(seconds, 86400))
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is not None:
        moment = moment.replace(tzinfo=None) - (moment.utcoffset() or timedelta(0))
    return min(max(moment, now), now + timedelta(days=1))


def decide(
    status: int | None, retry_after: str | None, attempts: int, now: datetime,
    base_seconds: float = 30.0,
) -> Outcome:
    """What follows an attempt: `status` is None for a network error or timeout.

    `attempts` counts the attempt just made.
    """
    if status is not None and 200 <= status < 300:
        return Outcome("sent")
    if status == 410:
        return Outcome("gone")
    if status is not None and 400 <= status < 500 and status not in RETRYABLE_4XX:
        return Outcome("failed")
    if attempts >= MAX_ATTEMPTS:
        return Outcome("failed", host_failed=status is None or status >= 500)
    later = now + backoff(attempts, base_seconds)
    if status in (429, 503):
        later = max(later, parse_retry_after(retry_after, now) or later)
    return Outcome("pending", later, host_failed=status is None or status >= 500)


def pause_for(consecutive_failures: int, base_seconds: float) -> timedelta | None:
    """How long to leave a host alone after this many failures in a row (None: not yet)."""
    if consecutive_failures < PAUSE_AFTER_FAILURES:
        return None
    # Capped before exponentiation: a host down for weeks reaches hundreds of failures, and
    # 2**n seconds overflows timedelta long before that.
    steps = min(consecutive_failures - PAUSE_AFTER_FAILURES, 30)
    return min(timedelta(seconds=base_seconds * 2 ** steps), MAX_PAUSE)


