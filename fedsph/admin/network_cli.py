"""The `fedsph` commands of the network view: `hub …`, `link …` and `event …`; and the
node-wide powers `admin …`, `block …` and `token …` (fedsph/admin/node_commands.py).

Each feature parses and runs its own commands (an `add_parsers(sub)` function and a COMMANDS
table keyed "command action"); fedsph.cli adds the parsers and fedsph.admin.commands.run looks the
key up here when its own table lacks it.
"""

from __future__ import annotations

import argparse

from fedsph.admin import node_commands as admin_commands
from fedsph.events import commands as event_commands
from fedsph.hub import commands as hub_commands
from fedsph.links import commands as link_commands

FEATURES = (hub_commands, link_commands, event_commands, admin_commands)
COMMANDS: dict = {key: handler for feature in FEATURES for key, handler in feature.COMMANDS.items()}


def add_network_parsers(sub: argparse._SubParsersAction) -> None:
    """Called by fedsph.cli.build_parser with its subcommands."""
    for feature in FEATURES:
        feature.add_parsers(sub)
