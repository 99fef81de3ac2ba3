"""A project (a local actor) and what it publishes: its profile and actor document, its posts
(notes), media, reactions, notifications, feeds and the read queries of timelines.

May import `fedsph.federation`, `fedsph.core` and `fedsph.models`; never another feature
package, `web`, `api` or the CLI.

"""
