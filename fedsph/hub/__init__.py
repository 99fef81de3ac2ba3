"""Hub mode (issue 5): a node whose hub actor gathers projects from many nodes.

membership: joining and leaving (Join, Invite, Accept, Reject, Leave), on both sides.
reshare: the hub announces its members' public activities to its followers (FEP-1b12).
backfill: a new member's recent updates, fetched from its outbox.
relay: relay subscribers (FEP-ae0c) get the members' public activities as they are.
directory, exports, mapsvg: the hub's pages and exports.
links_graph: the solidarity links between member projects, by region.
commands: `fedsph hub …`.

A feature package beside events and links (which it does not import): may import
`fedsph.projects`, `fedsph.federation`, `fedsph.core` and `fedsph.models`.
"""
