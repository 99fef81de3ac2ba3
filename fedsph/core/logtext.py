"""Text from requests and other servers made safe for one log line.

A refusal message may quote an activity's `type`, a key id or a fetched document's field; a
newline in it would let a sender write a forged line into our log (log injection, CWE-117).
"""

from __future__ import annotations

import logging
import time

# Enough to see what was refused; a megabyte of `type` must not become a megabyte of log.
MAX_LOGGED = 500


def printable(value: object, limit: int = MAX_LOGGED) -> str:
    """`value` as one line of text: unprintable characters escaped (\\n, \\x1b)."""
    text = str(value)[:limit]
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


class LogFormatter(logging.Formatter):
    """logging.Formatter whose `asctime` is formatted once a second rather than once a line:
    with the access log on, a busy server writes a line per request (strftime was ~1% of the
    CPU of a GET). The text is the same as logging's default: "2026-12-06 08:42:01,123"."""

    _second: tuple[int, str] = (-1, "")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt:
            return super().formatTime(record, datefmt)
        second = int(record.created)
        cached_second, stamp = self._second
        if second != cached_second:
            stamp = time.strftime(self.default_time_format, self.converter(record.created))
            self._second = (second, stamp)  # one tuple: threads never see a mismatched pair
        return self.default_msec_format % (stamp, record.msecs)
