"""Helpers shared by more than one test module: imported by tests, never collected as tests.

Fixtures stay in tests/conftest.py (which builds them from these helpers); a helper used by a
single test module stays in that module. One module per subject:

- nodes: an in-process node (settings, start, the CLI's view of it) and running its worker;
- members: users, logging in with a browser-like client, forms, API tokens;
- pages: fetching and auditing pages, a project with a full profile, its posts;
- images: JPEG uploads; events: a HUB meeting; hub: hub membership and relay subscriptions;
- inbox: activities as a remote server sends them; proofs: a second FEP-8b32 verifier;
- db: rows set up or read back (remote actors, follows, delivery and inbox queues).

Harnesses, not helpers, live beside the tests: tests/fakepeer.py (a fake remote server),
tests/processes.py (real node processes) and tests/mastodon_peer.py (a Mastodon-like peer).
Fixture plugins (tests/dbfixtures.py, tests/pgcluster.py) hold fixtures only.
"""
