"""One handler per activity type, and the table that dispatches to them."""

from __future__ import annotations

from fedsph.handlers.context import HandlerContext, Ignored
from fedsph.handlers.follows import handle_accept, handle_follow, handle_reject
from fedsph.handlers.moves import handle_move
from fedsph.handlers.posts import handle_create, handle_delete, handle_update
from fedsph.handlers.reactions import handle_announce, handle_like
from fedsph.handlers.reports import handle_flag
from fedsph.handlers.undo import handle_undo

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
}

__all__ = ["HANDLERS", "HandlerContext", "Ignored"]
