"""A project (a local actor) and what it publishes: its profile and actor document, its posts
(notes), media, reactions, notifications, feeds and the read queries of timelines.

May import `fedsph.federation`, `fedsph.core` and `fedsph.models`; never another feature
package, `web`, `api` or the CLI.

Federation reads the generic fields of other servers' actor documents; the project profile in
them is read here, through the hook federation offers for it (`actors.ACTOR_READERS`). It is
filled when this package is first imported, which every process does before it meets an actor
(the app, the worker and the CLI all import the projects package).
"""

from fedsph.federation.actors import ACTOR_READERS
from fedsph.projects.profile_wire import remote_profile_values

if remote_profile_values not in ACTOR_READERS:
    ACTOR_READERS.append(remote_profile_values)
