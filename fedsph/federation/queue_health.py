"""How the queues stand, read from the database: what /metrics reports and `fedsph doctor` judges.

Read at the moment it is asked for, not counted in memory: the inbox is filled by every server
process and emptied by whichever process runs the worker (`serve --processes N`, `fedsph
worker`), so only the database knows the whole. Each query is served by an index on `status`
(ix_inbox_items_due, ix_deliveries_due,
ix_outgoing_mails_due) or reads the small host_states table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from fedsph.models import Delivery, HostState, InboxItem, OutgoingMail

FAILING_HOSTS_SHOWN = 5
# Every queue table (QueueColumns, an index on status first), counted by status under this
# name: /metrics reports each as `fedsph_<name>{status}`. A new queue is one more line here,
# and its statuses one more line in KNOWN_STATUSES.
COUNTED_QUEUES = {"inbox_items": InboxItem, "deliveries": Delivery, "outgoing_mails": OutgoingMail}
# Reported as 0 when no row has them, so a series does not vanish (and an alert on it go
# silent) when the last failed row is pruned. Statuses not listed are reported as found.
KNOWN_STATUSES = {"inbox_items": ("pending", "done", "ignored", "failed"),
                  "deliveries": ("pending", "sent", "failed", "gone"),
                  "outgoing_mails": ("pending", "sent", "failed", "cancelled")}


@dataclass
class QueueHealth:
    """What /metrics and doctor report; by_status holds the rows kept, by queue and status."""

    by_status: dict[str, dict[str, int]] = field(default_factory=dict)  # COUNTED_QUEUES' rows
    deliveries_retrying: int = 0  # pending after at least one failed attempt
    oldest_inbox_due: datetime | None = None  # next_attempt_at of the most overdue inbox item
    oldest_delivery_due: datetime | None = None  # next_attempt_at of the most overdue delivery
    oldest_mail_due: datetime | None = None  # next_attempt_at of the most overdue pending mail
    hosts_failing: int = 0  # hosts whose last attempts failed
    hosts_healthy: int = 0  # hosts whose last delivery succeeded
    hosts_paused: int = 0  # of them, those not tried until their pause ends
    failing_hosts: list[str] = field(default_factory=list)  # the first few, most failures first


async def queue_health(db: AsyncSession, now: datetime) -> QueueHealth:
    health = QueueHealth()
    for name, model in COUNTED_QUEUES.items():
        rows = await db.execute(select(model.status, func.count()).group_by(model.status))
        health.by_status[name] = {status: count for status, count in rows}
    health.deliveries_retrying = await db.scalar(select(func.count()).select_from(Delivery).where(
        Delivery.status == "pending", Delivery.attempts > 0)) or 0
    # Due, not merely pending: an item waiting out its backoff (a retry) is where it should
    # be; only one whose time has come and gone says the worker is not getting to it.
    health.oldest_inbox_due = await db.scalar(select(func.min(InboxItem.next_attempt_at)).where(
        InboxItem.status == "pending", InboxItem.next_attempt_at <= now))
    health.oldest_delivery_due = await db.scalar(select(func.min(Delivery.next_attempt_at)).where(
        Delivery.status == "pending", Delivery.next_attempt_at <= now))
    health.oldest_mail_due = await db.scalar(select(func.min(OutgoingMail.next_attempt_at)).where(
        OutgoingMail.status == "pending", OutgoingMail.next_attempt_at <= now))
    failing = HostState.consecutive_failures > 0
    paused = func.count().filter(HostState.paused_until > now)
    health.hosts_failing, health.hosts_paused = (await db.execute(
        select(func.count(), paused).where(failing))).one()
    health.hosts_healthy = await db.scalar(select(func.count()).select_from(HostState).where(
        HostState.consecutive_failures == 0, HostState.last_success_at.is_not(None))) or 0
    health.failing_hosts = list(await db.scalars(
        select(HostState.host).where(failing).order_by(HostState.consecutive_failures.desc(),
                                                       HostState.host).limit(FAILING_HOSTS_SHOWN)))
    return health


async def last_delivered_origin(db: AsyncSession) -> str | None:
    """scheme://host of the server most recently answering a delivery: a peer whose clock
    `fedsph doctor` may compare with ours. The scheme is its inbox's (https but in tests)."""
    host = await db.scalar(select(HostState.host).where(HostState.last_success_at.is_not(None))
                           .order_by(HostState.last_success_at.desc()).limit(1))
    if host is None:
        return None
    inbox = await db.scalar(select(Delivery.inbox).where(Delivery.host == host).limit(1))
    scheme = "http" if inbox and inbox.startswith("http://") else "https"
    return f"{scheme}://{host}"
