"""HTTP for people and for other servers: pages, forms and the ActivityPub endpoints.

- ActivityPub and discovery: `activitypub` (actors, inboxes, outboxes, objects),
  `note_collections` (a post's replies, likes and shares), `wellknown`
  (WebFinger, NodeInfo, host-meta), `signed_fetch` (authorised GETs), `interact` (remote follow).
- Public pages: `pages`, `post_views`, `profile_view`, `languages`, `hrefs` (the one `page_href`),
  `feeds` (Atom), `media`.
- Members: `members` (log in, invitations), `project_manage`, `compose`, `profile_edit`,
  `project_hubs`, `auth_middleware` (sessions, CSRF), `client_address`.
- Features: `event_pages` with `event_views` and `event_forms`, `link_pages`, `hub_pages`,
  `hub_manage`.
- Plumbing: `render` (templates, content negotiation), `middleware` (errors), `headers` (CSP and
  the other security headers), `access_log`, `keys` (typed app keys), `context`, `documents`,
  `params`.
- Operating: `health` (/healthz), `metrics` (/metrics, only when configured).

Each module adds only its own routes; `fedsph/app.py` calls them and lists the middlewares.
Presentation only: may import the features, `federation` and everything below them,
never `api`, `app` or the CLI (the import-linter contract in pyproject.toml).
"""
