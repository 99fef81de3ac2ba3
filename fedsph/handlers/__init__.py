"""One handler per activity type, and the table that dispatches to them.

May import the feature packages (projects, events, links, hub), `fedsph.federation` and below;
never `worker`, `web`, `api` or the CLI (the import-linter contract in pyproject.toml).
"""

from __future__ import annotations

from fedsph.handlers.answers import dispatch
from fedsph.handlers.context import HandlerContext, Ignored
from fedsph.handlers.follows import accept_follow, handle_follow, reject_follow
from fedsph.handlers.hubs import accept_invite, handle_backfill, handle_invite, reject_invite
from fedsph.handlers.joins import accept_join, handle_join, handle_leave, reject_join
from fedsph.handlers.links import accept_offer, handle_offer, reject_offer, undo_link
from fedsph.handlers.moves import handle_move
from fedsph.handlers.posts import handle_create, handle_delete, handle_update
from fedsph.handlers.reactions import handle_announce, handle_like
from fedsph.handlers.reports import handle_flag
from fedsph.handlers.undo import undo_follow_or_reaction

# Accept, Reject and Undo by the type of the activity they name (None: the type is not known).
ACCEPTED = {"Follow": accept_follow, "Join": accept_join, "Invite": accept_invite,
            "Offer": accept_offer, None: accept_follow}
REJECTED = {"Follow": reject_follow, "Join": reject_join, "Invite": reject_invite,
            "Offer": reject_offer, None: reject_follow}
UNDONE = {"Follow": undo_follow_or_reaction, "Like": undo_follow_or_reaction,
          "Announce": undo_follow_or_reaction, "EmojiReact": undo_follow_or_reaction,
          "Offer": undo_link, "Accept": undo_link, None: undo_follow_or_reaction}


async def handle_accept(ctx: HandlerContext, activity: dict, actor) -> str:
    return await dispatch(ACCEPTED, "Accept", ctx, activity, actor)


async def handle_reject(ctx: HandlerContext, activity: dict, actor) -> str:
    return await dispatch(REJECTED, "Reject", ctx, activity, actor)


async def handle_undo(ctx: HandlerContext, activity: dict, actor) -> str:
    return await dispatch(UNDONE, "Undo", ctx, activity, actor)


HANDLERS = {
    "Follow": handle_follow,
    "Accept": handle_accept,
    "Reject": handle_reject,
    "Undo": handle_undo,
    "Create": handle_create,
    "Update": handle_update,
    "Delete": handle_delete,
    "Announce": handle_announce,
    "Like": handle_like,
    "Move": handle_move,
    "Flag": handle_flag,
    "Join": handle_join,
    "Leave": handle_leave,
    "Invite": handle_invite,
    "Offer": handle_offer,
    "fedsph:Backfill": handle_backfill,  # queued by this node only (fedsph/hub/backfill.py)
}

__all__ = ["HANDLERS", "HandlerContext", "Ignored"]
