"""Events a project organises (FEP-8a8e-style `Event` objects): the domain service, what is
received of other servers' events, participation, iCalendar export and the CLI commands.

May import `fedsph.projects`, `fedsph.federation`, `fedsph.core` and `fedsph.models`.
"""

# Federation stores received objects; an Event's details are kept through the hook it offers
# (federation may not import features). Filled when this package is first imported, which the
# app, the worker and the CLI all do before they receive anything.
from fedsph.events.received import store_event_details
from fedsph.federation.remote_objects import OBJECT_DETAILS

OBJECT_DETAILS["Event"] = store_event_details
