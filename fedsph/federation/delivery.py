"""Who receives an activity, and what to do after each attempt to deliver it.

The retry policy is a pure function so tests can walk through it without a clock or a network.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from fedsph.core.numbers import parse_number
from fedsph.federation import blocks
from fedsph.models import Activity, Actor, Delivery, Follow, InboxItem

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


def inboxes_for(recipients: list[Actor]) -> tuple[set[str], list[Actor]]:
    """Remote inboxes (shared inbox preferred, de-duplicated) and local recipients."""
    remote: set[str] = set()
    local: list[Actor] = []
    for actor in recipients:
        if actor.local:
            local.append(actor)
        elif actor.delivery_inbox:
            remote.add(actor.delivery_inbox)
    return remote, local


async def follower_actors(db: AsyncSession, actor: Actor) -> list[Actor]:
    rows = await db.scalars(
        select(Actor).join(Follow, Follow.follower_id == Actor.id)
        .where(Follow.followed_id == actor.id, Follow.state == "accepted",
               # Relay subscribers get members' activities as they are (fedsph/hub/relay.py).
               Follow.relay.is_(False)))
    return list(rows)


async def enqueue_deliveries(db: AsyncSession, activity: Activity, recipients: list[Actor]) -> int:
    """One delivery row per remote inbox; local recipients get an inbox row, no HTTP. Blocked
    accounts and servers get nothing."""
    remote, local = inboxes_for(await blocks.unblocked(db, recipients))
    for inbox in sorted(remote):
        db.add(Delivery(activity_id=activity.id, inbox=inbox, host=urlsplit(inbox).netloc))
    if local:
        exists = await db.scalar(select(InboxItem.id).where(InboxItem.activity_uri == activity.uri))
        if exists is None:
            sender = await db.get(Actor, activity.actor_id)
            db.add(InboxItem(activity_uri=activity.uri, type=activity.type,
                             actor_uri=sender.uri, body=activity.body))
    return len(remote)
