"""`python -m bench [--quick] [options]`: run the benchmarks and print fedsph vs baseline.

Every size can also come from the environment: BENCH_DURATION, BENCH_CONNECTIONS, BENCH_FOLLOWERS,
BENCH_HOSTS, BENCH_SINK_PROCS, BENCH_CONCURRENCY, BENCH_WORKER_BATCH, BENCH_LOADGEN, BENCH_ONLY,
BENCH_KEEP, BENCH_STRICT (flags beat the environment).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from dataclasses import fields, replace
from pathlib import Path

from bench import discovery, fanout
from bench.common import Config
from bench.node import BenchNode


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


def print_table(rows: list[dict]) -> None:
    print()
    header = f"{'benchmark':<22} {'fedsph':>14} {'baseline':>14} {'ratio':>7} {'target':>7}  result"
    print(header)
    print("-" * len(header))
    for row in rows:
        ratio = row["fedsph"] / row["baseline"] if row["baseline"] else 0.0
        row["ratio"] = ratio
        verdict = "ok" if ratio >= row["target"] else "BELOW TARGET"
        if row["errors"]:
            verdict += f", {row['errors']} ERRORS"
        fedsph, baseline = (f"{row[k]:.0f} {row['unit']}" for k in ("fedsph", "baseline"))
        print(f"{row['name']:<22} {fedsph:>14} {baseline:>14} {ratio:>7.2f} {row['target']:>7.2f}  "
              f"{verdict}")
    print()
    for row in rows:
        print(f"{row['name']}: {row['note']}")
        for line in row.get("checks", []):
            print(f"  {line}")


def main(argv: list[str] | None = None) -> int:
    config = parse_config(sys.argv[1:] if argv is None else argv)
    print(f"fedsph benchmarks on {platform.node()} ({os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}): {config}", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="fedsph-bench-"))
    node = BenchNode(workdir / "node", config)
    node.setup()
    rows: list[dict] = []
    started = time.monotonic()
    if config.only in ("all", "discovery"):
        node.serve()
        try:
            rows += discovery.run(config, node, workdir)
        finally:
            node.stop()
    if config.only in ("all", "fanout"):
        rows += fanout.run(config, node, workdir)
    print_table(rows)
    print(f"\ntook {time.monotonic() - started:.0f}s; logs and data in {workdir}"
          if config.keep else f"\ntook {time.monotonic() - started:.0f}s")
    if not config.keep:
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)
    if any(row["errors"] for row in rows):
        return 1
    if config.strict and any(row["ratio"] < row["target"] for row in rows):
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
