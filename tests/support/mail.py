"""Members with addresses and remote actors, for the e-mail tests."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from fedsph.models import Actor, User
from fedsph.web.mail_pages import FORGOT_LOOKUPS
from tests.support.members import browser, make_user, post_form


async def member(node, username: str, project=None, email: str | None = None,
                 confirmed: bool = True, admin: bool = False) -> User:
    user = await make_user(node, username, project, admin=admin)
    async with node.writers() as db, db.begin():
        row = await db.get(User, user.id)
        row.email, row.email_confirmed = email, email if confirmed else None
    return user


async def remote_actor(node, username: str) -> Actor:
    async with node.writers() as db, db.begin():
        actor = Actor(uri=f"https://remote.example/users/{username}", local=False,
                      type="Person", username=username, domain="remote.example",
                      inbox=f"https://remote.example/users/{username}/inbox")
        db.add(actor)
    return actor


async def count_rows(node, model, *where) -> int:
    async with node.readers() as db:
        return await db.scalar(select(func.count()).select_from(model).where(*where))


async def ask_for_reset(node, login: str) -> None:
    """The "forgot password" form sent for `login`, and its lookup (run after the answer) done."""
    async with browser() as client:
        response = await post_form(client, f"{node.base}/password/forgot", {"login": login})
        assert response.status == 200
    await asyncio.wait_for(node.app[FORGOT_LOOKUPS].settled(), 30)  # a hang fails
