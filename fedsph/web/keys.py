"""Typed keys for what the application carries (aiohttp AppKeys)."""

from __future__ import annotations

import jinja2
from aiohttp import web
from cachetools import TTLCache
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from fedsph.config import Settings
from fedsph.core.urls import URLs
from fedsph.federation.remote import Remote
from fedsph.i18n import LANG  # noqa: F401 (re-exported: see below)

SETTINGS = web.AppKey("settings", Settings)
URLS = web.AppKey("urls", URLs)
ENGINE = web.AppKey("engine", AsyncEngine)
READERS = web.AppKey("readers", async_sessionmaker[AsyncSession])
WRITERS = web.AppKey("writers", async_sessionmaker[AsyncSession])
REMOTE = web.AppKey("remote", Remote)
TEMPLATES = web.AppKey("templates", jinja2.Environment)
WORKER = web.AppKey("worker", object)
DOCUMENTS = web.AppKey("documents", TTLCache)
# The hub index's generation as a fedsph.db.QuickSQLiteRead on SQLite (no thread hop); None on
# PostgreSQL.
QUICK_GENERATION = web.AppKey("quick_generation", object)
# The hub directory's member count and facet counts, with the index generation they are of.
FACET_CACHE = web.AppKey("hub_facet_cache", dict)
# Rendered hub pages for visitors who are not logged in, by index generation (web/hub_pages.py).
HUB_PAGE_CACHE = web.AppKey("hub_page_cache", object)
INGEST = web.AppKey("ingest", object)  # fedsph.federation.ingest.Ingest: the inbox's group commit

# Per-request values set by middleware (fedsph/i18n.py, fedsph/web/auth_middleware.py); LANG is
# defined in fedsph/i18n.py, the lower layer that sets it, and kept here with the others.
USER = web.RequestKey("user", object)  # a fedsph.models.User, or None
LOGIN_SESSION = web.RequestKey("login_session", object)
CSRF_TOKEN = web.RequestKey("csrf_token", str)
# A file-upload form's multipart reader, once the CSRF check has read its first field.
MULTIPART = web.RequestKey("multipart", object)
# The hub directory index's generation the page cache keyed this request by (web/hub_pages.py),
# so the facet counts of the same request read it once.
HUB_GENERATION = web.RequestKey("hub_generation", int)
