"""Whole numbers read from hostile text (request ids, page numbers, limits, offsets, header
values, form fields): checked here and only here.

`str.isdigit()` is no check: it accepts "²", which `int()` refuses, and row ids are signed
64-bit, so a larger number makes SQLite raise OverflowError. Only ASCII digits in range pass;
callers turn None into the answer that fits (404 for an id in a path, 400 for a bad parameter).
"""

from __future__ import annotations

import re

MAX_ROW_ID = 2**63 - 1  # the largest signed 64-bit integer: every id column's range
MAX_PAGE = 99_999  # page numbers beyond it are no one's reading, only a costly OFFSET
MAX_UNIX_TIME = 253_402_300_799  # 9999-12-31T23:59:59Z, the last second a datetime holds
_ASCII_DIGITS = re.compile(r"[0-9]{1,19}")


def parse_number(raw: object, minimum: int = 0, maximum: int = MAX_ROW_ID) -> int | None:
    """`raw` as an int when it is ASCII digits only and minimum <= n <= maximum, else None."""
    if not isinstance(raw, str) or _ASCII_DIGITS.fullmatch(raw) is None:
        return None
    number = int(raw)
    return number if minimum <= number <= maximum else None


def parse_id(raw: object) -> int | None:
    """A row id (1 <= n < 2**63) in ASCII digits, else None."""
    return parse_number(raw, minimum=1)


def parse_page(raw: object, maximum: int = MAX_PAGE) -> int | None:
    """A page number (1 <= n <= maximum) in ASCII digits, else None."""
    return parse_number(raw, minimum=1, maximum=maximum)
