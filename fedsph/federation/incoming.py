"""What every incoming-activity handler receives, and how it says an activity was not for us.

Here in federation, below the features, because the hub's relay and re-sharing (fedsph/hub/)
are called by the handlers (fedsph/handlers/) with this context and may not import them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from fedsph.config import Settings
from fedsph.core.urls import URLs
from fedsph.federation.remote import Remote


class Ignored(Exception):
    """The activity is valid enough but has nothing for this node: recorded, not retried."""


@dataclass
class HandlerContext:
    db: AsyncSession
    remote: Remote
    urls: URLs
    settings: Settings
    # The activity's bytes as received (the inbox item's body): a hub forwards them unchanged to
    # its relay subscribers, so the author's integrity proof still verifies (fedsph/hub/reshare.py).
    body: bytes | None = None
    # The actor's own key signed the request (not a relay for it): fedsph/federation/actors.py reads its
    # Update of itself then.
    signed_by_actor: bool = False
    # The local actor whose own inbox received the activity (None: the shared inbox or this
    # node's own delivery): a Create delivered there addresses that actor (fedsph/handlers/posts.py).
    delivered_to: str | None = None
    # The activity's integrity proof (FEP-8b32) verified against its actor's key, in the worker
    # (fedsph.federation.integrity.proof_problem): only then may it be passed on as its author's
    # word (fedsph/projects/deleted_boosts.py). An unusable or expired proof leaves it False.
    proof_verified: bool = False
    # Our recorded activities that an Accept/Reject/Undo names, parsed, by id (None: not ours):
    # several steps of one handler call look at the same one (fedsph/handlers/answers.py).
    answered: dict[str, dict | None] = field(default_factory=dict)
