"""The `fedsph` command: gathers every feature's subcommands and runs the one asked for.

Each feature module has `add_parsers(subparsers)` and a COMMANDS table of `handler(node, args)`
keyed "command" or "command action"; the few commands that cannot run inside an opened node
(migrate, serve, backup, db copy…) are the features' WITHOUT_NODE tables. A UserError is printed on one
line (exit 1); any other exception is a bug and keeps its traceback.

Only `fedsph.__main__` and the console script import this module.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

from fedsph import __version__
from fedsph.admin import dbcopy, doctor, node, package_data, powers, user_commands
from fedsph.config import ConfigError, load_settings
from fedsph.core.logtext import LogFormatter
from fedsph.db import NotMigrated
from fedsph.errors import HTTPProblem, UserError
from fedsph.events import commands as event_commands
from fedsph.hub import commands as hub_commands
from fedsph.links import commands as link_commands
from fedsph.projects import commands as project_commands

# In the order `fedsph --help` lists them.
FEATURES = (node, project_commands, user_commands, hub_commands, link_commands, event_commands,
            powers, dbcopy,
            doctor)  # operating (issue 14)
COMMANDS: dict = {key: handler for feature in FEATURES for key, handler in feature.COMMANDS.items()}
# Commands that run before the node can be opened, or own the event loop (migrate, serve, db copy…).
WITHOUT_NODE: dict = {key: handler for feature in FEATURES
                      for key, handler in getattr(feature, "WITHOUT_NODE", {}).items()}
# Commands that only move the database (no page, no mail): they need the migrations but not the
# templates and catalogs, so a node can be migrated or backed up while its install is repaired.
# Every other command refuses to start on an incomplete install (fedsph/admin/package_data.py).
DATABASE_ONLY = frozenset({"migrate", "bootstrap", "backup", "restore", "db copy"})
# Not checked at all: `fedsph doctor` reports missing templates, catalogs and migrations as one
# of its lines (issue 14), so it must run on the most broken install.
INSTALL_UNCHECKED = frozenset({"doctor"})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fedsph", description="A federated node for housing projects.")
    parser.add_argument("--version", action="version", version=f"fedsph {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for feature in FEATURES:
        feature.add_parsers(sub)
    return parser


def command_key(args: argparse.Namespace) -> str:
    """"project set" for `fedsph project set …`: commands with actions are keyed by both."""
    action = getattr(args, f"{args.command}_command", None)
    return f"{args.command} {action}" if action else args.command


def main(argv: list[str] | None = None) -> int:
    # Owner-only files whatever the caller's umask: the database (and SQLite's -wal/-shm, which
    # it creates later), backups and photos hold the projects' private keys and unpublished
    # work. fedsph.core.files also chmods them, for files made before this or by other entry points.
    previous_umask = os.umask(0o077)
    try:
        return _main(argv)
    finally:
        os.umask(previous_umask)  # in-process callers (tests) get theirs back


def _main(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"fedsph: configuration error: {exc}", file=sys.stderr)
        return 2
    stderr = logging.StreamHandler(sys.stderr)
    stderr.setFormatter(LogFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=settings.log_level, handlers=[stderr])
    # No format of ours shows a thread or multiprocessing name, and every record (one a request
    # with the access log on) would look both up: about a µs of the access log's few.
    logging.logThreads = logging.logMultiprocessing = False
    key = command_key(args)
    try:
        if key not in INSTALL_UNCHECKED:
            package_data.require(settings, rendering=key not in DATABASE_ONLY)
        without_node = WITHOUT_NODE.get(key)
        if without_node is not None:
            return without_node(settings, args) or 0
        return asyncio.run(node.run(settings, COMMANDS[key], args)) or 0
    except (NotMigrated, UserError) as exc:  # anything else is a bug: its traceback is shown
        print(f"fedsph: {exc}", file=sys.stderr)
        return 1
    except HTTPProblem as exc:  # a web answer met on the command line (Gone: a deleted actor)
        if exc.status >= 500:  # a server error is a bug or an outage: its traceback is shown
            raise
        print(f"fedsph: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
