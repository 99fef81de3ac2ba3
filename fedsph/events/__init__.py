"""Events a project organises (FEP-8a8e-style `Event` objects): the domain service, what is
received of other servers' events, participation, iCalendar export and the CLI commands.

May import `fedsph.projects`, `fedsph.federation`, `fedsph.core` and `fedsph.models`.
"""

