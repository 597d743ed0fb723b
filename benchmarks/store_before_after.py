#!/usr/bin/python3
"""Two builds of the Store, measured in one run, turn about: whether a change
to the Store (not to what it stores) made it slower.

  benchmarks/store_before_after.py BEFORE_BENCH_BUILD AFTER_BENCH_BUILD [--rounds N] [--keys N]

Each build dir is a configured and built `bench` preset (its benchmarks/
holds kvstore-compare and kvstore-store-bench). Every round runs the map and
the Store under each policy (kvstore-compare, 1 and 2 threads) and the
recovery and checkpoint timings (kvstore-store-bench), before then after, so
that the machine's drift falls on both alike. Prints a Markdown table of the
medians and of after / before.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

PEERS = "kvstore,store-none,store-relaxed,store-group"
THREADS = [1, 2]


def run_json(command):
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run(command + ["--json", out.name], check=True, stdout=subprocess.DEVNULL)
        with open(out.name) as f:
            return json.load(f)


def measure(build, keys, work_dir):
    bench = os.path.join(build, "benchmarks")
    figures = {}
    compare = run_json([os.path.join(bench, "kvstore-compare"), "--peers", PEERS, "--keys", str(keys),
                        "--threads", ",".join(map(str, THREADS)), "--seconds", "1", "--rounds", "1"])
    for peer in compare["peers"]:
        figures[(peer["label"], "load")] = peer["load_mops"]
        for w, workload in enumerate(compare["workloads"]):
            for t, threads in enumerate(compare["threads"]):
                figures[(peer["label"], f"{workload}, {threads} thr")] = peer["mops"][w][t]
    store = run_json([os.path.join(bench, "kvstore-store-bench"), "--records", str(keys), "--rounds", "1",
                      "--dir", work_dir])
    for field in ("open_from_log_seconds", "checkpoint_seconds", "open_from_snapshot_seconds"):
        figures[("Store, GroupCommitWAL", field.replace("_", " "))] = store[field]
    return figures


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before")
    parser.add_argument("after")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keys", type=int, default=1_000_000)
    args = parser.parse_args()
    if args.rounds < 1:
        sys.exit("--rounds must be at least 1")
    samples = {"before": [], "after": []}
    with tempfile.TemporaryDirectory(prefix="kvstore-before-after-") as work:
        for round_number in range(args.rounds):
            for side in ("before", "after"):
                print(f"round {round_number + 1}/{args.rounds}: {side}", file=sys.stderr)
                samples[side].append(measure(getattr(args, side), args.keys, os.path.join(work, side)))
    print(f"| {args.keys} keys, median of {args.rounds} | before | after | after / before |")
    print("|---|---|---|---|")
    for key in samples["before"][0]:
        before = statistics.median(s[key] for s in samples["before"])
        after = statistics.median(s[key] for s in samples["after"])
        unit = "s" if "seconds" in key[1] else "M ops/s"
        ratio = after / before if before else float("nan")
        print(f"| {key[0]}: {key[1]} ({unit}) | {before:.3g} | {after:.3g} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
