"""`python -m bench [--quick] [options]`: run the benchmarks and print fedsph vs baseline.

Every size can also come from the environment: BENCH_DURATION, BENCH_CONNECTIONS, BENCH_FOLLOWERS,
BENCH_HOSTS, BENCH_SINK_PROCS, BENCH_CONCURRENCY, BENCH_WORKER_BATCH, BENCH_JOINS, BENCH_LOADGEN, BENCH_ONLY,
BENCH_KEEP, BENCH_STRICT, BENCH_ENGINES, BENCH_OUT, BENCH_JOINS,
BENCH_DIRECTORY_MEMBERS (flags beat the environment).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import fields, replace
from pathlib import Path

from bench import directory, discovery, fanout, ingest, joins, memory
from bench.common import Config
from bench.pgserver import PostgresCluster

# name -> module with `run(config, workdir, database_url) -> list[row]`, where database_url is ""
# for SQLite in the benchmark's own data dir. A module with ENGINE_AWARE = True runs once per
# engine of --engines; the others run on SQLite only. A row: name, fedsph, baseline, unit, target,
# errors, note, optional checks (lines), kind ("ratio", the default, or "max") and digits.
BENCHMARKS = {"discovery": discovery, "fanout": fanout, "ingest": ingest, "joins": joins,
              "directory": directory, "memory": memory}


def parse_config(argv: list[str]) -> Config:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    for f in fields(Config):
        flag = "--" + f.name.replace("_", "-")
        if f.type == "bool":
            parser.add_argument(flag, action="store_true", default=None)
        else:
            parser.add_argument(flag, type={"int": int, "float": float}.get(f.type, str),
                                help=f"default {f.default} (see bench/common.py Config)")
    args = parser.parse_args(argv)
    config = Config.quick() if args.quick else Config()
    changes = {}
    for f in fields(Config):
        kind = {"int": int, "float": float, "bool": lambda v: v.lower() in ("1", "true", "yes")}.get(
            f.type, str)
        env = os.environ.get("BENCH_" + f.name.upper())
        if env is not None:
            changes[f.name] = kind(env)
        if getattr(args, f.name) is not None:
            changes[f.name] = getattr(args, f.name)
    return replace(config, **changes)


def verdict(row: dict) -> tuple[float | None, bool]:
    """(ratio or None, target met). A row is either fedsph vs a same-run baseline (the ratio
    must reach `target`), or, with `"kind": "max"`, a figure that must stay at or under `target`
    (latencies, sizes, memory)."""
    if row.get("kind") == "max":
        return None, row["fedsph"] <= row["target"]
    ratio = row["fedsph"] / row["baseline"] if row["baseline"] else 0.0
    return ratio, ratio >= row["target"]


def format_table(rows: list[dict]) -> list[str]:
    header = (f"{'benchmark':<34} {'engine':<10} {'fedsph':>14} {'baseline':>14} {'ratio':>7} "
              f"{'target':>9}  result")
    lines = [header, "-" * len(header)]
    for row in rows:
        ratio, met = verdict(row)
        row["ratio"], row["met"] = ratio, met
        result = "ok" if met else "MISSED"
        if row["errors"]:
            result += f", {row['errors']} ERRORS"
        unit = row["unit"]
        fedsph = f"{row['fedsph']:.{row.get('digits', 0)}f} {unit}"
        baseline = (f"{row['baseline']:.{row.get('digits', 0)}f} {unit}"
                    if row.get("baseline") else "-")
        target = f"<= {row['target']:g}" if row.get("kind") == "max" else f">= {row['target']:.2f}"
        shown_ratio = f"{ratio:.3f}" if ratio is not None else "-"
        lines.append(f"{row['name']:<34} {row.get('engine', 'sqlite'):<10} {fedsph:>14} "
                     f"{baseline:>14} {shown_ratio:>7} {target:>9}  {result}")
    lines.append("")
    for row in rows:
        lines.append(f"{row['name']} ({row.get('engine', 'sqlite')}): {row['note']}")
        lines.extend(f"  {line}" for line in row.get("checks", []))
    return lines


def engines(config: Config) -> list[tuple[str, str | None]]:
    """(engine name, database URL) pairs to run on: "" is SQLite in the node's data dir."""
    chosen = []
    for name in config.engines.split(","):
        if name.strip() == "sqlite":
            chosen.append(("sqlite", ""))
        elif name.strip() in ("postgresql", "postgres"):
            chosen.append(("postgresql", None))  # a fresh database per benchmark, made on use
    return chosen


def main(argv: list[str] | None = None) -> int:
    config = parse_config(sys.argv[1:] if argv is None else argv)
    machine = (f"{platform.node()} ({os.cpu_count()} CPUs, {platform.machine()}, Python "
               f"{platform.python_version()}, {platform.platform()})")
    print(f"fedsph benchmarks on {machine}: {config}", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="fedsph-bench-"))
    wanted = list(BENCHMARKS) if config.only == "all" else [
        name.strip() for name in config.only.split(",")]
    unknown = [name for name in wanted if name not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}",
              file=sys.stderr)
        return 2
    rows: list[dict] = []
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        cluster = None
        for name in wanted:
            module = BENCHMARKS[name.strip()]
            for engine, url in engines(config):
                if engine != "sqlite" and not getattr(module, "ENGINE_AWARE", False):
                    continue
                if url is None:
                    if cluster is None:
                        cluster = stack.enter_context(PostgresCluster())
                    url = cluster.new_database()
                bench_dir = workdir / f"{name.strip()}-{engine}"
                bench_dir.mkdir()
                for row in module.run(config, bench_dir, url):
                    rows.append({"engine": engine, **row})
    lines = format_table(rows)
    print("\n" + "\n".join(lines))
    out = Path(config.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(f"# fedsph benchmarks, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n\n"
                   f"Machine: {machine}\n\nConfig: {config}\n\n```\n" + "\n".join(lines) + "\n```\n")
    print(f"\ntook {time.monotonic() - started:.0f}s; table written to {out}"
          + (f"; logs and data in {workdir}" if config.keep else ""))
    if not config.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    if any(row["errors"] for row in rows):
        return 1
    if config.strict and not all(row["met"] for row in rows):
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
