"""`fedsph doctor`: a checklist of what keeps a node alive, each line with a verdict.

    ok       the check passed
    warning  works for now, but look at it (e.g. a certificate expiring within 14 days)
    problem  something is broken (other servers cannot reach the node, keys are missing...)
    skip     could not be checked (no peer known yet, the database unreachable...)

Exit code: 0 when every line is ok or skip, 1 with warnings, 2 with any problem (2 also when
the configuration cannot be read, as for every command: fedsph/cli.py; for a bad argument, as
argparse does; and when a check crashes: its line is a problem), so a timer or a monitoring
script can act on it. The checks are in doctor_checks.py (local) and doctor_net.py
(over the network, short timeouts).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import traceback
from collections.abc import Awaitable, Callable

from fedsph.admin import doctor_net
from fedsph.admin.doctor_checks import (
    EXIT_CODES,
    PROBLEM,
    SKIP,
    WARNING,
    Line,
    check_configuration,
    check_metrics_access,
    check_package_files,
    check_permissions,
    local_checks,
)
from fedsph.config import Settings
from fedsph.db import make_engine

log = logging.getLogger("fedsph.doctor")
NETWORK_LINES = ("public URL", "metrics hidden", "TLS certificate", "clock")


def _crashed(name: str, exc: BaseException) -> Line:
    """A check that raised is a bug of the check or an answer it did not expect: its line says
    so and the others still run. The traceback goes to the log (standard error)."""
    log.error("doctor: the %s check failed:\n%s", name, "".join(
        traceback.format_exception(exc)).rstrip())
    return Line(PROBLEM, name, f"the check itself failed: {type(exc).__name__}: "
                f"{str(exc)[:200]}", "please report this, with the traceback above")


def _guarded(name: str, check: Callable[[], Line]) -> Line:
    try:
        return check()
    except Exception as exc:  # noqa: BLE001 - reported as the check's line (_crashed)
        return _crashed(name, exc)


async def _guarded_async(name: str, check: Callable[[], Awaitable]) -> list[Line]:
    try:
        result = await check()
    except Exception as exc:  # noqa: BLE001 - reported as the check's line (_crashed)
        return [_crashed(name, exc)]
    return result if isinstance(result, list) else [result]


async def _database_part(settings: Settings):
    engine = make_engine(settings)
    try:
        return await local_checks(settings, engine)
    finally:
        await engine.dispose()


async def run_checks(settings: Settings, peer: str | None, offline: bool,
                     lines: list[Line] | None = None) -> list[Line]:
    """Every check's lines, appended to `lines` as they come: if something outside the guarded
    checks raises, the caller still has what was gathered (doctor())."""
    lines = [] if lines is None else lines
    lines += [_guarded("configuration", lambda: check_configuration(settings)),
              _guarded("metrics access", lambda: check_metrics_access(settings)),
              _guarded("templates and catalogs", lambda: check_package_files(settings)),
              _guarded("permissions", lambda: check_permissions(settings))]
    target, last_peer = None, None
    try:
        database_lines, target, last_peer = await _database_part(settings)
    except Exception as exc:  # noqa: BLE001 - reported as the check's line (_crashed)
        database_lines = [_crashed("database", exc)]
    lines += database_lines
    if offline:
        lines += [Line(SKIP, name, "--offline") for name in NETWORK_LINES]
        return lines
    async with doctor_net.client(settings) as http:
        lines += await _guarded_async(
            "public URL", lambda: doctor_net.check_public_url(http, settings, target))
        lines += await _guarded_async(
            "metrics hidden", lambda: doctor_net.check_metrics_hidden(http, settings))
        lines += await _guarded_async(
            "TLS certificate", lambda: doctor_net.check_certificate(settings))
        if peer:  # the operator's choice: any address
            lines += await _guarded_async("clock", lambda: doctor_net.check_clock(http, peer))
            return lines
    chosen, refused = doctor_net.database_peer(settings, last_peer)
    if refused:
        lines.append(refused)
        return lines
    async with doctor_net.client(settings, settings.allow_private_networks) as guarded:
        lines += await _guarded_async("clock", lambda: doctor_net.check_clock(guarded, chosen))
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
    lines: list[Line] = []
    try:
        asyncio.run(run_checks(settings, args.peer, args.offline, lines))
    except Exception as exc:  # noqa: BLE001 - the lines so far, then this one (exit 2)
        lines.append(_crashed("doctor", exc))
        lines.append(Line(PROBLEM, "doctor", "could not finish its checks: the lines above "
                          "are all it has"))
    return print_lines(lines)


def peer_url(text: str) -> str:
    """--peer's type: a bad one is a usage error (exit 2, argparse's), not a finding."""
    if not text.lower().startswith(("http://", "https://")):
        raise argparse.ArgumentTypeError(
            f"takes a server's URL (https://example.social), not {text!r}")
    return text


COMMANDS: dict = {}
WITHOUT_NODE: dict = {"doctor": doctor}  # it must run when the node cannot be opened


def add_parsers(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("doctor", help="check the node: configuration, database, keys, "
                            "permissions, public URL, TLS, clock, queues (exit 0: all ok, "
                            "1: warnings, 2: problems)")
    parser.add_argument("--peer", metavar="URL", type=peer_url, help="a server to compare the "
                        "clock with (default: the one most recently delivered to)")
    parser.add_argument("--offline", action="store_true",
                        help="skip the checks that go to the network")
