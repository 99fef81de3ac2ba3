"""`fedsph doctor`: a checklist of what keeps a node alive, each line with a verdict.

    ok       the check passed
    warning  works for now, but look at it (e.g. a certificate expiring within 14 days)
    problem  something is broken (other servers cannot reach the node, keys are missing...)
    skip     could not be checked (no peer known yet, the database unreachable...)

Exit code: 0 when every line is ok or skip, 1 with warnings, 2 with any problem (2 also when
the configuration cannot be read, as for every command: fedsph/cli.py), so a timer or a
monitoring script can act on it. The checks are in doctor_checks.py (local) and doctor_net.py
(over the network, short timeouts).
"""

from __future__ import annotations

import argparse
import asyncio

from fedsph.admin import doctor_net
from fedsph.admin.doctor_checks import (
    EXIT_CODES,
    PROBLEM,
    SKIP,
    WARNING,
    Line,
    check_configuration,
    check_package_files,
    check_permissions,
    local_checks,
)
from fedsph.config import Settings
from fedsph.db import make_engine
from fedsph.errors import UserError


async def run_checks(settings: Settings, peer: str | None, offline: bool) -> list[Line]:
    lines = [check_configuration(settings), check_package_files(settings),
             check_permissions(settings)]
    engine = make_engine(settings)
    try:
        database_lines, target, last_peer = await local_checks(settings, engine)
    finally:
        await engine.dispose()
    lines += database_lines
    if offline:
        return lines + [Line(SKIP, name, "--offline") for name in ("public URL", "clock")]
    async with doctor_net.client(settings) as http:
        lines += await doctor_net.check_public_url(http, settings, target)
        lines.append(await doctor_net.check_certificate(settings))
        lines.append(await doctor_net.check_clock(http, peer or last_peer))
    return lines


def print_lines(lines: list[Line]) -> int:
    for line in lines:
        print(f"{line.verdict:<8} {line.name}: {line.detail}")
        if line.fix:
            print(f"{'':<8} -> {line.fix}")
    code = max((EXIT_CODES[line.verdict] for line in lines), default=0)
    problems = sum(1 for line in lines if line.verdict == PROBLEM)
    warnings = sum(1 for line in lines if line.verdict == WARNING)
    summary = "all good" if code == 0 else f"{problems} problem(s), {warnings} warning(s)"
    print(f"doctor: {summary} (exit {code})")
    return code


def doctor(settings: Settings, args: argparse.Namespace) -> int:
    peer = args.peer
    if peer and not peer.lower().startswith(("http://", "https://")):
        raise UserError(f"--peer takes a server's URL (https://example.social), not {peer!r}")
    return print_lines(asyncio.run(run_checks(settings, peer, args.offline)))


COMMANDS: dict = {}
WITHOUT_NODE: dict = {"doctor": doctor}  # it must run when the node cannot be opened


def add_parsers(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("doctor", help="check the node: configuration, database, keys, "
                            "permissions, public URL, TLS, clock, queues (exit 0: all ok, "
                            "1: warnings, 2: problems)")
    parser.add_argument("--peer", metavar="URL", help="a server to compare the clock with "
                        "(default: the one most recently delivered to)")
    parser.add_argument("--offline", action="store_true",
                        help="skip the checks that go to the network")
