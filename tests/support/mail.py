"""Members with addresses and remote actors, for the e-mail tests."""

from __future__ import annotations

from sqlalchemy import func, select

from fedsph.models import Actor, User
from tests.support.members import make_user


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
