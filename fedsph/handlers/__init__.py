"""One handler per activity type, and the table that dispatches to them.

May import the feature packages (projects, events, links, hub), `fedsph.federation` and below;
never `worker`, `web`, `api` or the CLI (the import-linter contract in pyproject.toml).
"""

from __future__ import annotations

from fedsph.federation.incoming import HandlerContext, Ignored
from fedsph.handlers.answers import dispatch
from fedsph.handlers.follows import follow_accepted, follow_rejected, handle_follow
from fedsph.handlers.hubs import handle_backfill, handle_invite, invite_accepted, invite_rejected
from fedsph.handlers.joins import handle_join, handle_leave, join_accepted, join_rejected
from fedsph.handlers.links import handle_offer, offer_accepted, offer_rejected, undo_link
from fedsph.handlers.moves import handle_move
from fedsph.handlers.posts import handle_create, handle_delete, handle_update
from fedsph.handlers.reactions import handle_announce, handle_like
from fedsph.handlers.reports import handle_flag
from fedsph.handlers.undo import undo_follow_or_reaction

# Accept, Reject and Undo by the type of the activity they name (None: the type is not known).
ACCEPTED = {"Follow": follow_accepted, "Join": join_accepted, "Invite": invite_accepted,
            "Offer": offer_accepted, None: follow_accepted}
REJECTED = {"Follow": follow_rejected, "Join": join_rejected, "Invite": invite_rejected,
            "Offer": offer_rejected, None: follow_rejected}
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
