"""Text from requests and other servers made safe for one log line.

A refusal message may quote an activity's `type`, a key id or a fetched document's field; a
newline in it would let a sender write a forged line into our log (log injection, CWE-117).
"""

from __future__ import annotations

# Enough to see what was refused; a megabyte of `type` must not become a megabyte of log.
MAX_LOGGED = 500


def printable(value: object, limit: int = MAX_LOGGED) -> str:
    """`value` as one line of text: unprintable characters escaped (\\n, \\x1b)."""
    text = str(value)[:limit]
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)
