"""Alembic environment: runs migrations over the async engine for SQLite and PostgreSQL."""

import asyncio

from alembic import context
from sqlalchemy.ext.asyncio import create_async_engine

from fedsph.models import Base

target_metadata = Base.metadata


def run_migrations_offline() -> None:
    context.configure(
        url=context.config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run(sync_conn) -> None:
    # render_as_batch lets ALTERs work on SQLite, which cannot alter most columns in place.
    context.configure(connection=sync_conn, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


async def run_migrations_online() -> None:
    engine = create_async_engine(context.config.get_main_option("sqlalchemy.url"))
    async with engine.begin() as conn:
        await conn.run_sync(_run)
    await engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    asyncio.run(run_migrations_online())
