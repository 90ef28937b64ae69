"""A/B: this checkout's engine against an earlier commit's, in the same run.

``python bench/ab_engine.py [--base acf8a5a] [--rounds 3]`` checks the base
commit out into a temporary git worktree, primes each tree's numba cache,
then measures both trees alternately (A, B, A, B, ...) in fresh processes
with ``backend="numba"`` on the default model and real texts from
../shared/data:

* queries/s: batches of 32 queries, dim 256, 2 threads;
* documents/s: all corpus documents in batches of 1,024, dim 512, 2 threads and 1 thread;
* single-query latency p50 (µs), one query a call, default threads.

Writes the run under its base commit in ``bench/results/ab_engine.json`` (one
file for every base compared; git keeps the earlier runs) and the "Engine A/B"
section of ``bench/results/RESULTS.md`` (for another ``--base``, a section of
its own, titled by ``--label``). The ratio is this tree ÷ base (> 1: faster now).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import RESULTS_DIR, write_results_section

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
DEFAULT_BASE = "acf8a5a"  # before the engine redesign (issue 13)

_MEASURE = r"""
import json, sys, time
import numpy as np
import sse_np
data = sys.argv[2]
queries, docs = [], []
for name in ("scifact", "nfcorpus", "msmarco-dl19-5k"):
    queries += [json.loads(l)["text"] for l in open(f"{data}/{name}/queries.jsonl", encoding="utf-8")]
    for l in open(f"{data}/{name}/corpus.jsonl", encoding="utf-8"):
        r = json.loads(l); docs.append((r.get("title", "") + " " + r["text"]).strip())
m = sse_np.load(sys.argv[1], backend="numba", threads=2)
m.encode(queries[:64], 256); m.encode(docs[:256], 512)
def rate(fn, n, seconds=3.0):
    best = 0.0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t = time.perf_counter(); fn(); best = max(best, n / (time.perf_counter() - t))
    return best
batches = [queries[i:i + 32] for i in range(0, len(queries) - 32, 32)]
def all_queries():
    for b in batches:
        m.encode(b, 256)
qps = rate(all_queries, 32 * len(batches))
dps = rate(lambda: m.encode(docs, 512, batch_size=1024), len(docs), 6.0)
m.threads = 1  # as a Ray Data actor holding one CPU runs
dps1 = rate(lambda: m.encode(docs, 512, batch_size=1024), len(docs), 6.0)
m.threads = None
lat = []
for q in queries[:2000]:
    t = time.perf_counter_ns(); m.encode(q, 256); lat.append(time.perf_counter_ns() - t)
print(json.dumps({"queries_per_s": qps, "docs_per_s": dps, "docs_per_s_1_thread": dps1,
                  "p50_us": float(np.median(lat)) / 1000}))
"""


def _run(tree: Path, cache: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SSE_NP_")}
    env.update(PYTHONPATH=str(tree), NUMBA_CACHE_DIR=str(cache))
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(ROOT / "weights"), str(DATA)],
        env=env,
        capture_output=True,
        text=True,
        cwd=tree,
        timeout=1800,
    )
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default=DEFAULT_BASE, help="commit to compare with (default: before the redesign)")
    parser.add_argument("--label", default="before the engine redesign", help="what the base commit is, for the report")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    default = args.base == DEFAULT_BASE
    tag = "" if default else f"-{args.base}"
    mark_begin, mark_end = f"<!-- engine-ab{tag}:begin -->", f"<!-- engine-ab{tag}:end -->"
    title = "Engine A/B (issue 13)" if default else f"Engine A/B against `{args.base}` ({args.label})"
    work = Path(tempfile.mkdtemp(prefix="sse_np_ab_"))
    base_tree = work / "base"
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(base_tree), args.base],
        check=True,
        capture_output=True,
    )
    try:
        trees = {"this": (ROOT, work / "cache_this"), "base": (base_tree, work / "cache_base")}
        for tree, cache in trees.values():
            _run(tree, cache)  # prime: compile into this run's caches
        runs: dict[str, list[dict]] = {"this": [], "base": []}
        for _ in range(args.rounds):
            for name in ("base", "this"):
                runs[name].append(_run(*trees[name]))
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base_tree)], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)
    med = {n: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for n, rs in runs.items()}
    ratio = {
        k: (med["this"][k] / med["base"][k]) if k != "p50_us" else med["base"][k] / med["this"][k] for k in med["this"]
    }
    record = RESULTS_DIR / "ab_engine.json"
    by_base = json.loads(record.read_text()) if record.exists() else {}
    by_base[args.base] = {"base": args.base, "runs": runs, "median": med, "ratio": ratio}
    record.write_text(json.dumps(by_base, indent=1))
    command = f"python bench/ab_engine.py --base {args.base} --rounds {args.rounds}"
    if not default:
        command += f" --label '{args.label}'"
    lines = [
        mark_begin,
        f"## {title}",
        "",
        f"`{command}`: this tree against commit "
        f"`{args.base}` ({args.label}), alternating fresh processes, warm caches, medians of "
        f"{args.rounds} (each the best of a few seconds of calls). Ratio > 1: this tree is faster.",
        "",
        "| figure | base | this tree | ratio | target |",
        "|---|---:|---:|---:|---|",
    ]
    labels = {
        "queries_per_s": "queries/s, batch 32, dim 256, 2 threads",
        "docs_per_s": "documents/s, dim 512, 2 threads",
        "docs_per_s_1_thread": "documents/s, dim 512, 1 thread",
        "p50_us": "single-query latency p50, µs",
    }
    for k, label in labels.items():
        if k not in med["this"]:  # a figure added after the run being reported
            continue
        lines.append(f"| {label} | {med['base'][k]:,.1f} | {med['this'][k]:,.1f} | {ratio[k]:.2f} | ≥ 0.95 |")
    lines += ["", mark_end]
    section = "\n".join(lines)
    write_results_section(section, mark_begin, mark_end)
    print(section)


if __name__ == "__main__":
    main()
