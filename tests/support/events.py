"""A HUB meeting published by a local project."""

from __future__ import annotations

from fedsph.events.service import publish_event
from fedsph.federation.actors import get_local_actor

MEETING = {"name": "Encuentro HUB regional", "content": "Orden del día: vivienda cooperativa.",
           "kind": "hub_meeting", "starts_at": "2027-03-10T09:00", "ends_at": "2027-03-10T17:00",
           "timezone": "America/Montevideo",
           "place": {"name": "FUCVAM", "address": "Av. 8 de Octubre 3000", "latitude": -34.8837,
                     "longitude": -56.1667},
           "online_url": "https://meet.example.org/hub", "languages": ["es", "pt"],
           "interpretation": ["en"], "join_mode": "free"}


async def make_event(node, project_name="coop", **changes):
    async with node.writers() as db, db.begin():
        project = await get_local_actor(db, project_name)
        return await publish_event(db, node.urls, project, **{**MEETING, **changes})
