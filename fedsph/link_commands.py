"""Commands of this feature (see fedsph/network_cli.py): parsers and their handlers."""

from __future__ import annotations

import argparse

COMMANDS: dict = {}


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Add this feature's subcommands to the `fedsph` parser."""
