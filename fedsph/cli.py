"""The `fedsph` command: argument parsing only; the work is in fedsph.admin.commands."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

from fedsph import __version__
from fedsph.admin.network_cli import add_network_parsers
from fedsph.config import ConfigError, load_settings
from fedsph.db import NotMigrated


class CommandError(Exception):
    """A command could not do what was asked; the message is shown to the user."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fedsph", description="A federated node for housing projects.")
    parser.add_argument("--version", action="version", version=f"fedsph {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("migrate", help="create or upgrade the database schema")
    serve = sub.add_parser("serve", help="run the web server (with a worker unless --no-worker)")
    serve.add_argument("--no-worker", action="store_true", help="do not process queues here")
    sub.add_parser("worker", help="run only the queue worker (for a separate process)")
    sub.add_parser("bootstrap", help="first run: migrate, then create a project and an admin")

    project = sub.add_parser("project", help="manage projects").add_subparsers(
        dest="project_command", required=True, metavar="ACTION")
    create = project.add_parser("create", help="create a project (an ActivityPub Group)")
    create.add_argument("slug")
    create.add_argument("--name", required=True)
    create.add_argument("--summary")
    create.add_argument("--manual-approval", action="store_true",
                        help="follow requests wait for approval")
    project.add_parser("list", help="list the projects on this node")
    pset = project.add_parser(
        "set", help="set profile fields of a project (tells its followers)",
        description="Set one profile field: FIELD VALUE... (list fields take several values, "
                    "no VALUE clears the field, name:es sets a translation), or the whole "
                    "profile from a JSON file with --file.")
    pset.add_argument("slug")
    pset.add_argument("field", nargs="?", help="e.g. stage, approach, location, name:es")
    pset.add_argument("values", nargs="*", metavar="VALUE")
    pset.add_argument("--file", metavar="PROFILE.json", help="the whole profile as JSON")

    user = sub.add_parser("user", help="manage people who log in").add_subparsers(
        dest="user_command", required=True, metavar="ACTION")
    ucreate = user.add_parser("create", help="create a user (with a Person actor)")
    ucreate.add_argument("username")
    ucreate.add_argument("--password-stdin", action="store_true",
                         help="read the password from standard input (else one is generated)")
    ucreate.add_argument("--admin", action="store_true")
    ucreate.add_argument("--project", help="make the user a member of this project")

    post = sub.add_parser("post", help="publish an update as a project")
    post.add_argument("slug")
    post.add_argument("--text", required=True)
    post.add_argument("--lang", help="language of the text (BCP-47, e.g. es, fr, pt-BR)")
    edit = sub.add_parser("edit", help="change the text of an update")
    edit.add_argument("slug")
    edit.add_argument("object", help="the update's URL")
    edit.add_argument("--text", required=True)
    delete = sub.add_parser("delete", help="delete an update")
    delete.add_argument("slug")
    delete.add_argument("object", help="the update's URL")

    for name, text in (("follow", "follow a remote actor"), ("unfollow", "stop following")):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("slug", help="the local project (or user) that follows")
        cmd.add_argument("target", help="user@host or an actor URL")

    requests = sub.add_parser("follow-requests", help="list, approve or reject follow requests")
    requests.add_argument("slug")
    group = requests.add_mutually_exclusive_group()
    group.add_argument("--approve", type=int, metavar="ID")
    group.add_argument("--reject", type=int, metavar="ID")

    invite = sub.add_parser("invite", help="print a one-time link (7 days) to join a project")
    invite.add_argument("slug")
    queue = sub.add_parser("queue", help="counts of pending, failed and sent work, and the last errors")
    queue.add_argument("--prune", action="store_true", help="first delete processed inbox rows and "
                       "finished deliveries older than FEDSPH_INBOX_RETENTION_DAYS")
    reports = sub.add_parser("reports", help="list reports (Flag) received from other servers")
    reports.add_argument("--resolve", type=int, metavar="ID", help="mark a report as handled")
    reports.add_argument("--all", action="store_true", help="include resolved reports")
    backup = sub.add_parser("backup", help="write the database and photos to one file (SQLite)")
    backup.add_argument("file", help="the archive to write, e.g. fedsph-2026-11-23.tar.gz")
    restore = sub.add_parser("restore", help="restore a backup into the data directory "
                                             "(stop the node first), then migrate")
    restore.add_argument("file", help="an archive made by `fedsph backup`")
    restore.add_argument("--force", action="store_true", help="replace the existing database")
    media = sub.add_parser("media", help="manage uploaded images").add_subparsers(
        dest="media_command", required=True, metavar="ACTION")
    prune = media.add_parser("prune", help="delete images no update, icon or header uses")
    prune.add_argument("--older-than", default="24", metavar="HOURS",
                       help="only images uploaded more than HOURS ago (default 24)")
    add_network_parsers(sub)
    return parser


def _backup_or_restore(settings, args, commands) -> int:
    from pathlib import Path

    from fedsph.admin import backup

    if args.command == "backup":
        print(backup.backup(settings, Path(args.file)))
        return 0
    print(backup.restore(settings, Path(args.file), force=args.force))
    commands.migrate(settings)  # a backup from an older fedsph is brought up to date
    return 0


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
    logging.basicConfig(level=settings.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from fedsph.admin import commands

    try:
        if args.command == "migrate":
            commands.migrate(settings)
            return 0
        if args.command in ("backup", "restore"):
            return _backup_or_restore(settings, args, commands)
        if args.command == "bootstrap":
            commands.migrate(settings)
        return asyncio.run(commands.run(settings, args)) or 0
    except (NotMigrated, CommandError, ValueError) as exc:
        print(f"fedsph: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
