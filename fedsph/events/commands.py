"""`fedsph event …`: create, list and cancel a project's (or the hub's) events, join and leave
other servers' events, and approve people who asked to join a restricted event."""

from __future__ import annotations

import argparse

from sqlalchemy import select

from fedsph.core import vocab
from fedsph.errors import FetchError, UserError
from fedsph.events import service as events
from fedsph.events.fields import JOIN_MODES, local_time
from fedsph.events.participation import answer_participant, send_join, send_leave
from fedsph.federation.actors import actor_uris, resolve_actor
from fedsph.federation.remote_objects import (
    NotTheOwner,
    OlderThanHeld,
    author_of,
    fetch_object,
    get_object,
    store_object,
)
from fedsph.models import Actor, Event, EventParticipant, Object
from fedsph.projects.commands import NOT_THE_INSTANCE, local_actor


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Add this feature's subcommands to the `fedsph` parser."""
    event = sub.add_parser("event", help="HUB meetings, exchange visits, assemblies, workshops "
                           "and webinars").add_subparsers(dest="event_command", required=True,
                                                          metavar="ACTION")
    create = event.add_parser("create", help="announce an event of a project (or the hub)")
    create.add_argument("slug")
    create.add_argument("--name", required=True)
    create.add_argument("--start", required=True, help="local time, e.g. 2027-03-10T09:00")
    create.add_argument("--end", help="local time, e.g. 2027-03-10T17:00")
    create.add_argument("--tz", required=True, help="time zone, e.g. America/Montevideo")
    create.add_argument("--kind", choices=tuple(vocab.EVENT_KIND))
    create.add_argument("--place", help="where: a name or an address")
    create.add_argument("--online", help="the link to join online")
    create.add_argument("--languages", nargs="*", default=[], metavar="LANG")
    create.add_argument("--interpretation", nargs="*", default=[], metavar="LANG")
    create.add_argument("--join-mode", default="free", choices=JOIN_MODES)
    create.add_argument("--related", nargs="*", default=[], metavar="HANDLE",
                        help="related projects (user@host or actor URL)")
    create.add_argument("--text", default="", help="what the event is about")
    edit = event.add_parser("edit", help="change some details of one of our events (Update); "
                            "what is not given stays")
    edit.add_argument("slug")
    edit.add_argument("event", help="the event's URL")
    edit.add_argument("--name")
    edit.add_argument("--start", help="local time, e.g. 2027-03-10T09:00")
    edit.add_argument("--end", help='local time; "" for no end time')
    edit.add_argument("--tz", help="time zone (the clock times stay as they are)")
    edit.add_argument("--kind", help=f"one of {', '.join(vocab.EVENT_KIND)}; \"\" for none")
    edit.add_argument("--place", help='where: a name or an address (replaces the place); "" '
                      "for none")
    edit.add_argument("--online", help='the link to join online; "" for none')
    edit.add_argument("--languages", nargs="*", metavar="LANG")
    edit.add_argument("--interpretation", nargs="*", metavar="LANG")
    edit.add_argument("--join-mode", help=f"one of {', '.join(JOIN_MODES)}")
    edit.add_argument("--related", nargs="*", metavar="HANDLE",
                      help="related projects (user@host or actor URL); replaces the list")
    edit.add_argument("--text", help="what the event is about (replaces the description)")
    listing = event.add_parser("list", help="list an actor's events, upcoming first")
    listing.add_argument("slug")
    cancel = event.add_parser("cancel", help="cancel one of our events (Delete)")
    cancel.add_argument("slug")
    cancel.add_argument("event")
    for name, text in (("join", "take part in another server's event"),
                       ("leave", "stop taking part in an event")):
        cmd = event.add_parser(name, help=text)
        cmd.add_argument("slug")
        cmd.add_argument("event", help="the event's URL")
    people = event.add_parser("participants", help="who takes part; approve pending requests")
    people.add_argument("slug")
    people.add_argument("event")
    people.add_argument("--approve", type=int, metavar="ID")
    people.add_argument("--reject", type=int, metavar="ID")


async def _actor(db, slug: str) -> Actor:
    return await local_actor(db, slug, NOT_THE_INSTANCE, called="project or hub")


async def _own_event(db, actor: Actor, uri: str) -> Object:
    obj = await get_object(db, uri)
    if obj is None or obj.type != "Event" or obj.actor_id != actor.id:
        raise UserError(f"{uri} is not an event of {actor.username}")
    return obj


async def _related_uris(node, handles) -> list[str]:
    return await actor_uris(node.writers, node.remote, handles)


async def create(node, args) -> int:
    related = await _related_uris(node, args.related)
    async with node.writers() as db, db.begin():
        actor = await _actor(db, args.slug)
        obj = await events.publish_event(
            db, node.urls, actor, name=args.name, content=args.text, kind=args.kind,
            starts_at=args.start, ends_at=args.end, timezone=args.tz,
            place={"name": args.place} if args.place else None, online_url=args.online,
            languages=args.languages, interpretation=args.interpretation,
            related_projects=related, join_mode=args.join_mode)
    print(obj.uri)
    return 0


def edited_fields(current: dict, args) -> dict:
    """The event's current fields with the options given on the command line changed."""
    fields = dict(current)
    primary = next(iter(current["name_map"]), "")
    if args.name is not None:
        fields["name_map"] = {**current["name_map"], primary: args.name}
    if args.text is not None:
        fields["contents"] = {**current["contents"], primary: args.text}
    simple = {"start": "starts_at", "end": "ends_at", "tz": "timezone", "kind": "kind",
              "online": "online_url", "join_mode": "join_mode", "languages": "languages",
              "interpretation": "interpretation"}
    for option, field in simple.items():
        value = getattr(args, option)
        if value is not None:
            fields[field] = value or ([] if isinstance(value, list) else None)
    if args.place is not None:
        fields["place"] = {"name": args.place} if args.place.strip() else None
    if fields["starts_at"] is None:
        raise UserError("an event needs a start time, e.g. 2027-03-10T09:00")
    if fields["join_mode"] is None:
        raise UserError(f"the join mode is one of {', '.join(JOIN_MODES)}")
    return fields


async def edit(node, args) -> int:
    related = await _related_uris(node, args.related) if args.related is not None else None
    async with node.writers() as db, db.begin():
        actor = await _actor(db, args.slug)
        obj = await _own_event(db, actor, args.event)
        fields = edited_fields(events.event_fields(obj, await db.get(Event, obj.id)), args)
        if related is not None:
            fields["related_projects"] = related
        await events.edit_event(db, node.urls, actor, obj, **fields)
    print(f"edited {args.event}")
    return 0


async def list_events(node, args) -> int:
    async with node.writers() as db:
        actor = await _actor(db, args.slug)
        rows = await db.execute(select(Object, Event).join(Event, Event.object_id == Object.id)
                                .where(Object.actor_id == actor.id, Object.deleted_at.is_(None))
                                .order_by(Event.starts_at))
        for obj, event in rows:
            start = local_time(event.starts_at, event.timezone)
            print(f"{start:%Y-%m-%d %H:%M} {event.timezone or 'UTC'}\t{obj.name}\t{obj.uri}")
    return 0


async def cancel(node, args) -> int:
    async with node.writers() as db, db.begin():
        actor = await _actor(db, args.slug)
        await events.cancel_event(db, node.urls, actor, await _own_event(db, actor, args.event))
    print(f"cancelled {args.event}")
    return 0


async def _remote_event(node, uri: str) -> tuple[Object, Actor]:
    """Another server's event, fetched and stored (with its organiser) when we lack it."""
    async with node.writers() as db:
        obj = await get_object(db, uri)
        if obj is not None and obj.type == "Event":
            return obj, await db.get(Actor, obj.actor_id)
    try:
        document = await fetch_object(node.remote, uri)
        if document.get("type") != "Event" or author_of(document) is None:
            raise UserError(f"{uri} is not an Event")
        owner_id = await resolve_actor(node.writers, node.remote, author_of(document))
    except FetchError as exc:
        raise UserError(f"cannot fetch the event {uri}: {exc}") from None
    async with node.writers() as db, db.begin():
        owner = await db.get(Actor, owner_id)
        try:
            return await store_object(db, document, owner), owner
        except (NotTheOwner, OlderThanHeld) as exc:  # what the other server sent breaks a rule
            raise UserError(str(exc)) from None


async def join(node, args) -> int:
    if node.urls.is_local(args.event):
        raise UserError("that event is on this node: nothing to send")
    obj, owner = await _remote_event(node, args.event)
    async with node.writers() as db, db.begin():
        actor = await _actor(db, args.slug)
        row = await send_join(db, node.urls, actor, await db.get(Object, obj.id), owner)
    print(f"asked to join {args.event} ({row.state})")
    return 0


async def leave(node, args) -> int:
    async with node.writers() as db, db.begin():
        actor = await _actor(db, args.slug)
        obj = await get_object(db, args.event)
        if obj is None or obj.type != "Event":
            raise UserError(f"{args.event} is not an event known here")
        done = await send_leave(db, node.urls, actor, obj, await db.get(Actor, obj.actor_id))
    print(f"left {args.event}" if done else f"{args.slug} had not joined {args.event}")
    return 0


async def participants(node, args) -> int:
    async with node.writers() as db, db.begin():
        actor = await _actor(db, args.slug)
        obj = await _own_event(db, actor, args.event)
        for wanted, accept in ((args.approve, True), (args.reject, False)):
            if wanted is None:
                continue
            row = await db.get(EventParticipant, wanted)
            if row is None or row.event_id != obj.id:
                raise UserError(f"no request {wanted} for this event")
            await answer_participant(db, node.urls, row, accept=accept)
        rows = await db.execute(select(EventParticipant, Actor).join(
            Actor, Actor.id == EventParticipant.actor_id).where(
            EventParticipant.event_id == obj.id).order_by(EventParticipant.id))
        for row, person in rows:
            print(f"{row.id}\t{row.state}\t@{person.username}@{person.domain}\t{person.uri}")
    return 0


COMMANDS: dict = {"event create": create, "event edit": edit, "event list": list_events,
                  "event cancel": cancel,
                  "event join": join, "event leave": leave, "event participants": participants}
