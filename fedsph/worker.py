"""The worker: processes received activities, many at once but those of one sender in order,
and sends deliveries (the sending is fedsph/worker_delivery.py).

`run_once()` does one round and is what tests call; `run_forever()` loops for processes.
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urldefrag

import orjson
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fedsph.config import Settings, mail_enabled
from fedsph.core.db_errors import lock_conflict
from fedsph.core.urls import URLs
from fedsph.errors import FetchError, Gone
from fedsph.federation.activitystreams import get_id
from fedsph.federation.actors import fetch_unless_held, held_actor, store_fetched_actor
from fedsph.federation.delivery import backoff
from fedsph.federation.integrity import proof_problem
from fedsph.federation.queue import claim_inbox_items, finish_inbox_item, prune_finished
from fedsph.federation.remote import Remote
from fedsph.handlers import HANDLERS, HandlerContext, Ignored
from fedsph.mail.queue import prune_mail
from fedsph.mail.sender import MailSender
from fedsph.models import Actor, InboxItem, utcnow
from fedsph.projects.media_prune import prune_media
from fedsph.projects.stream_events import prune_stream_events
from fedsph.worker_chains import Chains
from fedsph.worker_delivery import DeliverySender
from fedsph.worker_prefetch import Prefetch, reads_the_sender
from fedsph.worker_sessions import worker_sessions

log = logging.getLogger("fedsph.worker")

# Inbox items whose handler could not reach another server are retried this often.
INBOX_MAX_ATTEMPTS = 6
# Times an item is done again at once when its write conflicted with another item's (below).
CONFLICT_RETRIES = 3
# Unused uploads are pruned when the worker is idle, at most this often (seconds).
PRUNE_EVERY = 3600


class LeaseLost(Exception):
    """Another claim took the item since ours: its handler's writes are rolled back."""


@dataclass
class WorkerStats:
    processed: int = 0
    sent: int = 0


class Wakeup:
    """`Worker.wakeup`: set (by the web side) when there may be new work; wakes both loops."""

    def __init__(self) -> None:
        self.inbox, self.deliveries = asyncio.Event(), asyncio.Event()

    def set(self) -> None:
        self.inbox.set()
        self.deliveries.set()


class Worker:
    def __init__(self, settings: Settings, writers: async_sessionmaker[AsyncSession], remote: Remote):
        self.settings = settings
        # Reads (the item, what may be fetched) go to readers; see fedsph/worker_sessions.py.
        self.readers, self.writers = worker_sessions(settings, writers)
        writers = self.writers
        self.remote = remote
        self.urls = URLs(settings.base_url)
        self.wakeup = Wakeup()
        self.retry_base = settings.retry_base_seconds
        self.lease = timedelta(seconds=settings.worker_lease_seconds)
        self.claim_step = max(1, settings.worker_concurrency // 4)
        self.prefetch = Prefetch(self.readers, self.writers, self.remote, self.urls)
        self.chains = Chains(self.writers, self.lease)  # and the leases of items in hand
        self.next_prune = 0.0  # time.monotonic() after which the next pruning may run
        self.deliveries = DeliverySender(settings, writers, remote, readers=self.readers)
        # E-mail (fedsph/mail): a third loop, only when SMTP is configured.
        self.mail = (MailSender(settings, writers, readers=self.readers)
                     if mail_enabled(settings) else None)

    async def run_once(self) -> WorkerStats:
        """Process every due inbox item and delivery once; returns what was done."""
        stats = WorkerStats()
        while True:
            processed = await self._inbox_round()
            sent = await self.deliveries.round()
            if self.mail is not None:
                sent += await self.mail.round()
            stats.processed += processed
            stats.sent += sent
            if not processed and not sent:
                return stats

    async def run_forever(self, stop: asyncio.Event, idle_seconds: float = 1.0) -> None:
        """The inbox and the deliveries as two loops side by side, so that a burst of received
        activities does not hold back what we send (and the other way round)."""
        loops = [self._loop(stop, idle_seconds, self._inbox_round, self.wakeup.inbox),
                 self._loop(stop, idle_seconds, self._delivery_round, self.wakeup.deliveries)]
        if self.mail is not None:  # woken by nothing: a mail waits at most idle_seconds
            loops.append(self._loop(stop, idle_seconds, self.mail.round, asyncio.Event()))
        await asyncio.gather(*loops)

    async def _delivery_round(self) -> int:
        sent = await self.deliveries.round()
        if not sent:
            await self._prune_now_and_then()
        return sent

    async def _loop(self, stop: asyncio.Event, idle_seconds: float, round_, wakeup) -> None:
        while not stop.is_set():
            try:
                done = await round_()
            except (DBAPIError, OSError) as exc:
                # The database is busy, restarting or unreachable: nothing is lost, the rows wait
                # for us. SQLite says OperationalError; asyncpg raises OSError while PostgreSQL is
                # down and other DBAPIErrors while it shuts down or starts up.
                log.warning("worker round failed on the database: %s", exc)
                done = 0
            if done:
                continue
            wakeup.clear()
            try:
                await asyncio.wait_for(wakeup.wait(), idle_seconds)
            except TimeoutError:
                pass

    async def _prune_now_and_then(self) -> None:
        """Housekeeping, hourly: unused uploads (fedsph/projects/media_prune.py), then queue rows
        finished more than FEDSPH_INBOX_RETENTION_DAYS ago. It must never stop the queue: a
        failure is logged with its traceback, which keeps a bug visible."""
        if time.monotonic() < self.next_prune:
            return
        self.next_prune = time.monotonic() + PRUNE_EVERY
        try:
            media = await prune_media(self.writers, self.settings)
            if media.count:
                log.info("pruned %d unused image(s), %d bytes", media.count, media.bytes)
        except Exception:
            log.exception("pruning unused images failed")
        try:
            async with self.writers() as db, db.begin():
                rows = await prune_finished(db, timedelta(days=self.settings.inbox_retention_days))
                await prune_stream_events(db)  # the streaming API's events, minutes old
            if rows.inbox or rows.deliveries:
                log.info("pruned %d processed inbox row(s) and %d finished deliveries",
                         rows.inbox, rows.deliveries)
        except Exception:
            log.exception("pruning processed queue rows failed")
        try:  # a transaction of its own: a failure here keeps the pruning above, and the reverse
            async with self.writers() as db, db.begin():
                # finished mails and dead links, even with SMTP off now (it may have been on)
                await prune_mail(db, timedelta(days=self.settings.inbox_retention_days))
        except Exception:
            log.exception("pruning finished mails failed")

    # -- inbox -------------------------------------------------------------------------------

    async def _inbox_round(self) -> int:
        """Process due inbox items until none is left, up to FEDSPH_WORKER_CONCURRENCY at once;
        returns how many were processed.

        Items are claimed as places free up (no more than are free: a lease does not run
        while its item waits). A claim gives one sender's items (the ordering key) in id order,
        none while an earlier one is in hand (queue.py claim_inbox_items); those of one claim
        are processed one after another, as a chain, which stops at an item left pending (a
        retry) and gives back the rest. A database error ends the round once the chains in
        hand are done; items not done keep their lease, claimed again when it ends.
        """
        running: set[asyncio.Task[int]] = set()
        processed, failure = 0, None
        try:
            while True:
                free = self.settings.worker_concurrency - len(running)
                # A claim once a quarter of the places are free (or none is busy), not per item.
                if failure is None and (free >= self.claim_step or not running):
                    try:
                        running.update(asyncio.create_task(self._process_chain(*chain))
                                       for chain in await self._claim(free))
                    except (DBAPIError, OSError) as exc:
                        failure = exc
                if not running:
                    if failure is not None:
                        raise failure
                    return processed
                done, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    if task.exception() is not None:
                        failure = failure or task.exception()
                    else:  # what it did may have queued deliveries: no need to wait for them
                        processed += task.result()
                        self.wakeup.deliveries.set()
        finally:
            for task in running:  # cancelled (the worker stops): their leases run out
                task.cancel()

    async def _claim(self, free: int) -> list[tuple[list[int], datetime]]:
        """Up to `free` items claimed: per ordering key, (its ids in id order, the lease)."""
        async with self.writers() as db, db.begin():
            ids = await claim_inbox_items(db, min(free, self.settings.worker_batch), self.lease)
            rows = await db.execute(select(InboxItem.id, InboxItem.actor_uri, InboxItem.locked_until)
                                    .where(InboxItem.id.in_(ids)).order_by(InboxItem.id))
            chains: dict[str, tuple[list[int], datetime]] = {}
            for item_id, key, held in rows:
                chains.setdefault(key, ([], held))[0].append(item_id)
        return list(chains.values())

    async def _process_chain(self, chain: list[int], held: datetime) -> int:
        return await self.chains.run(chain, held, self._process_item)

    async def _process_item(self, item_id: int) -> bool:
        """True when the item ended (done, ignored, failed); False when it is left pending."""
        # Items of two senders may insert the same new row (an actor, a post) at once; on
        # PostgreSQL one then fails on the unique index. Done again, it finds the row.
        for attempt in range(1, CONFLICT_RETRIES + 1):
            try:
                return await self._process_item_once(item_id)
            except IntegrityError:
                if attempt == CONFLICT_RETRIES:  # not a race after all: a bug, as below
                    log.exception("handler failed for inbox item %s", item_id)
                    error = traceback.format_exc(limit=8)
        return await self._reschedule_item(item_id, error, retry=False)

    async def _process_item_once(self, item_id: int) -> bool:
        try:
            sender, activity, item = await self._sender(item_id)
            if isinstance(sender, dict) and ("proof" in activity or reads_the_sender(activity)):
                # The proof's check and these prefetches read the sender's row: stored first.
                async with self.writers() as db, db.begin():
                    sender = (await store_fetched_actor(db, sender)).id
            # A proof that fails (FEP-8b32) outweighs the HTTP signature: the activity is ignored,
            # checked before the prefetches so that a refused activity costs no fetches. Checked
            # again here (a relayed one was at the inbox), it needs no request (the key is ours).
            refused, proven = (await proof_problem(self.writers, self.remote, item_id)
                               if sender and "proof" in activity  # (else it reads the item)
                               else (None, False))
            if sender is not None and not refused:
                await self.prefetch.what_the_handler_needs(
                    activity, sender if isinstance(sender, int) else None, item.signed_by_actor)
            await self._handle(item_id, item, activity, sender, refused, proven)
            return True
        except LeaseLost:
            log.warning("inbox item %s was claimed again while in hand: not written", item_id)
            return False
        except FetchError as exc:
            error, retry = f"{exc}", True
        except (OperationalError, InterfaceError, OSError, IntegrityError):
            raise  # the database is away (the item keeps its lease), or a conflict (above)
        except Exception as exc:
            if isinstance(exc, DBAPIError) and lock_conflict(exc):
                # PostgreSQL ended the handler to break a deadlock (with an actor's deletion:
                # projects/deletion.py): nothing was written; tried again later, not a bug.
                error, retry = f"deadlock: {exc.orig}", True
            else:
                # A bug in a handler: keep the item with its traceback for the admin, move on.
                log.exception("handler failed for inbox item %s", item_id)
                error, retry = traceback.format_exc(limit=8), False
        return await self._reschedule_item(item_id, error, retry)

    async def _sender(self, item_id: int) -> tuple[int | dict | None, dict, InboxItem]:
        """The sender: the id of its row (read with the item), or its document's values fetched
        anew, stored in the handler's transaction (not one of their own before it); None for an
        actor gone (404/410): the handler ignores it. Then the activity and the item (its type,
        body and signer never change). This and the fetches below come before the handler's
        transaction (none is open across a fetch)."""
        async with self.readers() as db:
            # With the item, the row of its ordering key: the sender's, as the inbox stores it.
            item, held = (await db.execute(
                select(InboxItem, Actor).outerjoin(Actor, Actor.uri == InboxItem.actor_uri)
                .where(InboxItem.id == item_id))).one()
            activity = orjson.loads(item.body)
            uri = get_id(activity.get("actor")) or ""
            same = item.actor_uri == urldefrag(uri)[0]  # else read as held_actor reads it
            cached = held if same else await held_actor(db, uri)
        try:
            return await fetch_unless_held(self.remote, uri, cached), activity, item
        except FetchError as exc:
            if exc.status in (404, 410):
                return None, activity, item
            raise

    async def _handle(self, item_id: int, item: InboxItem, activity: dict,
                      sender: int | dict | None, refused: str | None, proven: bool) -> None:
        """The handler and the item's end in one transaction. An item the handler ignores
        (Ignored, or what it names is gone) ends in a transaction of its own: the handler's
        writes went with the first one, rolled back. (A savepoint round the handler did this
        at two statements per item, and nearly every item is not ignored.) The sender's row,
        when fetched anew, is stored again there: it passed its checks, and dropping it would
        cost a fetch of the same document for each of its next ignored activities."""
        try:
            async with self.writers() as db, db.begin():
                status, error = (("ignored", refused) if refused
                                 else await self._dispatch(db, item, activity, sender, proven))
                await self._finish(db, item_id, status, error)
                return
        except Ignored as exc:
            error = str(exc)
        except Gone as exc:  # record_activity for a local actor deleted meanwhile: not a bug
            error = f"actor deleted: {exc.message}"
        except FetchError as exc:
            if exc.status not in (404, 410):
                raise
            error = f"gone elsewhere: {exc}"
        async with self.writers() as db, db.begin():
            if isinstance(sender, dict):
                await store_fetched_actor(db, sender)
            await self._finish(db, item_id, "ignored", error)

    async def _finish(self, db: AsyncSession, item_id: int, status: str, error: str | None) -> None:
        # Written only while we hold the item; else its handler's writes are undone.
        if not await finish_inbox_item(db, item_id, self.chains.held.get(item_id), status, error):
            raise LeaseLost

    async def _dispatch(self, db: AsyncSession, item: InboxItem, activity: dict,
                        sender: int | dict | None, proven: bool) -> tuple[str, str | None]:
        """The item's handler in `db`; it raises Ignored (or FetchError) to have its writes
        undone (the sender's row, when new or refreshed, is stored again by `_handle`)."""
        if sender is None:
            return "ignored", "the sender's actor is gone from its server"
        actor = (await store_fetched_actor(db, sender) if isinstance(sender, dict)
                 else await db.get(Actor, sender))
        if actor is not None and actor.local:
            # FOR KEY SHARE: a deletion (which locks the row FOR UPDATE) either committed before
            # this read, so the tombstone is seen, or waits for this handler's commit and purges
            # what it wrote. An unlocked read could see it live while the deletion commits.
            actor = await db.scalar(select(Actor).where(Actor.id == actor.id)
                                    .with_for_update(read=True, key_share=True)
                                    .execution_options(populate_existing=True))
        if actor is None:  # its row went between the read with the item and this transaction
            return "ignored", "the sender's actor is gone"
        if actor.local and actor.deleted_at is not None:  # queued just before its deletion
            return "ignored", "the sender was deleted"
        handler = HANDLERS.get(item.type)
        if handler is None:  # (the sender's row is kept: this transaction commits)
            return "ignored", f"no handler for {item.type}"
        ctx = HandlerContext(db=db, remote=self.remote, urls=self.urls, settings=self.settings,
                             body=item.body, signed_by_actor=item.signed_by_actor,
                             delivered_to=item.delivered_to, proof_verified=proven)
        return await handler(ctx, activity, actor), None

    async def _reschedule_item(self, item_id: int, error: str, retry: bool) -> bool:
        """The item retried later, or failed for good (True); not written unless still ours."""
        async with self.writers() as db, db.begin():
            item = await db.get(InboxItem, item_id, with_for_update=True)
            if item.status != "pending" or item.locked_until != self.chains.held.get(item_id):
                log.warning("inbox item %s was claimed again while in hand: not written", item_id)
                return False
            item.attempts += 1
            item.last_error = error[:4000]
            item.locked_until = None
            if retry and item.attempts < INBOX_MAX_ATTEMPTS:
                item.next_attempt_at = utcnow() + backoff(item.attempts, self.retry_base)
            else:
                item.status, item.finished_at = "failed", utcnow()
            return item.status != "pending"
