"""ActivityPub between servers: the protocol, not what a project does with it.

Activity Streams helpers, keys and HTTP signatures (draft-cavage and RFC 9421), integrity
proofs (FEP-8b32), the HTTP client for other servers (`remote`), remote actors and objects bound
to where they were fetched from, blocks, visibility, the inbox (verify and store: accept fast),
the two queues (`queue`, `delivery`), `emit`, the one way to send, and `incoming`, what every
incoming-activity handler receives.

May import `fedsph.core`, `fedsph.models`, `config` and `errors`; never a feature package,
`web`, `api` or the CLI. A feature that must add to what federation does (the project profile
of a remote actor, an Event's details) fills a hook here: `actors.ACTOR_READERS`,
`remote_objects.OBJECT_DETAILS`, filled by `fedsph.app.connect_features` when a process starts.
"""
