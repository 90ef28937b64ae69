"""Engine start-up figures: kernel compile time, stalls during a background warm-up, cold start.

Run from a checkout (``python bench/engine_startup.py [--runs 3]``); it
writes ``bench/results/engine_startup.json`` and the "Engine start-up" section of
``bench/results/RESULTS.md`` (between its markers). Every figure comes from fresh
processes with an empty (or primed) ``NUMBA_CACHE_DIR`` of their own:

* compile: an empty cache -> every kernel the default model uses, in-process
  (``backend="numba"``), total and per kernel (each kernel's first call,
  in the order ``exercise`` calls them, minus what earlier ones compiled);
* background: ``backend="auto"`` with an empty cache, a loop of
  ``encode`` calls (100 and 1,000 real queries, alternating) until numba has
  been in use for 2 s: the slowest call, against the same calls on NumPy;
* cold start: fresh process -> first vector with a warm cache (the default
  backend, and ``backend="numba"``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import write_results_section

ROOT = Path(__file__).resolve().parents[1]
QUERIES = ROOT.parent / "shared" / "data" / "scifact" / "queries.jsonl"
MARK_BEGIN, MARK_END = "<!-- engine-startup:begin -->", "<!-- engine-startup:end -->"

_COMPILE = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy as np, sse_np
from sse_np.engine import import_numba as _import_numba, jit, numba_backend as nb_
_import_numba()
e = sse_np.load(sys.argv[1], backend="numpy").engine
times = {}
def timed(name, fn):
    t = time.perf_counter(); r = fn(); times[name] = time.perf_counter() - t; return r
b = timed("Unicode tables (derived once per tokenizers version)",
          lambda: nb_.NumbaBackend(e.table, e.dyt, e.tokenizer, e.mapping, e.weights, e.drop_id, jit.cache_folder()))
width = e.table.data.shape[1] * (2 if e.table.data.dtype == np.uint8 else 1)
out = np.empty((2, width), np.float32)
run = lambda texts: b.encode(texts, out[: len(texts)], True, 1, 1024, (-1, -1))
timed("embed_items: tokenize + gather + DyT + norm, one kernel", lambda: run(["warm up"]))
timed("pool_items: texts left to tokenizers (added tokens)", lambda: run(["[CLS] warm"]))
timed("tokenize(): the same kernel in its ids mode", lambda: b.tokenize(["warm up"], 0, 1))
total = time.perf_counter() - t0
print(json.dumps({"per_kernel": times, "process_total": total}))
"""

_LOAD = r"""
import sys, time
t0 = time.perf_counter()
import sse_np
m = sse_np.load(sys.argv[1], backend=sys.argv[2])
m.encode("first vector")
print(time.perf_counter() - t0)
"""

_STALL = r"""
import json, sys, time
t0 = time.perf_counter()
import sse_np
queries = [json.loads(l)["text"] for l in open(sys.argv[2], encoding="utf-8")]
small, big = queries[:100], (queries * 4)[:1000]
ref = sse_np.load(sys.argv[1], backend="numpy")
base = {}
for name, batch in (("100", small), ("1000", big)):
    ref.encode(batch)
    runs = []
    for _ in range(20):
        t = time.perf_counter(); ref.encode(batch); runs.append(time.perf_counter() - t)
    base[name] = sorted(runs)[len(runs) // 2]
m = sse_np.load(sys.argv[1])          # backend "auto", empty cache
calls, switched, k = [], None, 0
start = time.perf_counter()
while time.perf_counter() - start < 120:
    name, batch = ("100", small) if k % 2 == 0 else ("1000", big)
    t = time.perf_counter(); m.encode(batch); d = time.perf_counter() - t
    calls.append((name, d, m.engine.status))
    k += 1
    if m.engine.status == "numba" and switched is None:
        switched = time.perf_counter() - start
    if switched is not None and time.perf_counter() - start > switched + 2:
        break
during = [c for c in calls if c[2] != "numba"]
print(json.dumps({
    "numpy_median_s": base,
    "calls_before_switch": len(during),
    "max_call_s": {n: max([d for nm, d, _ in during if nm == n], default=None) for n in ("100", "1000")},
    "max_delay_s": max([d - base[nm] for nm, d, _ in during], default=0.0),
    "switched_after_s": switched,
}))
"""


def _run(code: str, args: list[str], cache: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SSE_NP_")}
    env["NUMBA_CACHE_DIR"] = str(cache)
    out = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=900
    )
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    return out.stdout.strip().splitlines()[-1]


def measure(model: str, runs: int) -> dict:
    res: dict = {"compile": [], "compile_in_load": [], "background": [], "cold_start": {"auto": [], "numba": []}}
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as empty:
            res["compile"].append(json.loads(_run(_COMPILE, [model], Path(empty))))
        with tempfile.TemporaryDirectory() as empty:
            res["compile_in_load"].append(float(_run(_LOAD, [model, "numba"], Path(empty))))
        with tempfile.TemporaryDirectory() as empty:
            res["background"].append(json.loads(_run(_STALL, [model, str(QUERIES)], Path(empty))))
    with tempfile.TemporaryDirectory() as warm:
        _run(_LOAD, [model, "numba"], Path(warm))  # prime
        for _ in range(max(5, runs)):
            for backend in ("auto", "numba"):
                res["cold_start"][backend].append(float(_run(_LOAD, [model, backend], Path(warm))))
    return res


def render(res: dict, machine: str) -> str:
    med = statistics.median
    kernels = res["compile"][0]["per_kernel"].keys()
    lines = [
        MARK_BEGIN,
        "## Engine start-up (issues 13 and 23)",
        "",
        f"`python bench/engine_startup.py` on {machine}; {len(res['compile'])} runs, medians "
        "(each in a fresh process with an empty `NUMBA_CACHE_DIR`).",
        "",
        "| kernel (first call compiles it) | seconds |",
        "|---|---:|",
    ]
    for k in kernels:
        lines.append(f"| {k} | {med(r['per_kernel'][k] for r in res['compile']):.2f} |")
    lines.append(
        "| **all kernels the default model uses** | "
        f"**{med(sum(r['per_kernel'].values()) for r in res['compile']):.2f}** |"
    )
    lines += [
        "",
        "| figure | median | runs | target |",
        "|---|---:|---|---|",
        f'| empty cache -> `load(backend="numba")` done (import, compile, load) | '
        f"{med(res['compile_in_load']):.2f} s | {', '.join(f'{x:.2f}' for x in res['compile_in_load'])} | "
        "≤ 6 s (compile) |",
    ]
    bg = res["background"]
    delays = ", ".join(f"{b['max_delay_s']:.3f}" for b in bg)
    lines.append(
        f'| `backend="auto"`, empty cache: slowest `encode` delay while kernels compile in a child '
        f"process (call time − same call on NumPy) | {med(b['max_delay_s'] for b in bg):.3f} s | "
        f"{delays} | ≤ 0.25 s |"
    )
    lines.append(
        f"| … slowest 1,000-query call before the switch (NumPy alone: "
        f"{med(b['numpy_median_s']['1000'] for b in bg):.3f} s) | "
        f"{med(b['max_call_s']['1000'] or 0 for b in bg):.3f} s | | |"
    )
    lines.append(f"| … numba in use after | {med(b['switched_after_s'] or float('nan') for b in bg):.1f} s | | |")
    for backend, label in (("auto", "default backend"), ("numba", '`backend="numba"`')):
        xs = res["cold_start"][backend]
        lines.append(
            f"| warm cache: fresh process -> first vector, {label} | {med(xs):.3f} s | "
            f"{', '.join(f'{x:.2f}' for x in xs)} | {'≤ 0.3 s' if backend == 'auto' else ''} |"
        )
    lines += ["", MARK_END]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "weights"))
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    res = measure(args.model, args.runs)
    import platform

    cpu = platform.processor()
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as info:
            cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), "?")
    machine = f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"
    (ROOT / "bench" / "results" / "engine_startup.json").write_text(json.dumps({"machine": machine, **res}, indent=1))
    section = render(res, machine)
    write_results_section(section, MARK_BEGIN, MARK_END)
    print(section)


if __name__ == "__main__":
    main()
