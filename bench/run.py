"""Run the sse_np benchmark suite and write bench/results/RESULTS.md, results.json, results.png.

Usage (from the repository root)::

    pip install -e . -r bench/requirements.txt
    python bench/run.py            # full size (~20 min on 2 cores)
    python bench/run.py --quick    # smoke size (2-4 minutes; numbers meaningless)

Every measurement whose result depends on threads, a cold process or RSS
runs in its own subprocess (``bench/worker.py``) with all thread-pool
environment variables set before Python starts. Peers that are not installed
are reported as "not installed".
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import queue
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `import bench` work
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import contextlib

from bench import data, footprint
from bench.common import REPO_ROOT, RESULT_PREFIX, RESULTS_DIR, parse_result, thread_env
from bench.engines import ENGINE_ORDER, ENGINES, is_installed
from bench.worker import WORKERS_READY

FULL: dict[str, Any] = {
    "threads": [1, 2],
    "repeats": 5,
    "min_time": 0.2,
    "n_queries": None,
    "n_docs": 600,
    "calib_docs": 200,
    "doc_batch_candidates": [32, 256, 1024],
    "query_batch": 32,
    "dims_throughput": [512, 256, 64],
    "dims_retrieval": [512, 256, 128],
    "latency_queries": 300,
    "latency_docs": 100,
    "latency_dim": 256,
    "corpus": "scifact",
    "corpus_docs": None,
    "synth_corpus": 20_000,
    "synth_queries": 160,
    "cold_repeats": 5,
    "memory_texts": 100_000,
    "bulk_texts": 1_000_000,
    "bulk_chunk": 10_000,
    # Peers stream fewer texts (their rate is steady long before 1M) to keep the run ~20 min.
    "bulk_texts_peers": 200_000,
    "bulk_dim": 256,
    "worker_timeout": 1800,
    # Concurrent processes per engine in the "workers" workload, and documents each encodes.
    "workers": 4,
    "workers_texts": 600,
}
QUICK: dict[str, Any] = {
    **FULL,
    "repeats": 5,
    "min_time": 0.01,
    "n_queries": 64,
    "n_docs": 48,
    "calib_docs": 24,
    "doc_batch_candidates": [16, 48],
    "latency_queries": 20,
    "latency_docs": 8,
    "corpus_docs": 200,
    "synth_corpus": 2000,
    "synth_queries": 64,
    "cold_repeats": 1,
    "memory_texts": 2000,
    "bulk_texts": 3000,
    "bulk_texts_peers": 3000,
    "bulk_chunk": 1000,
    "workers": 2,
    "workers_texts": 48,
    "worker_timeout": 600,  # 2 workers still show the sharing
}


def log(msg: str) -> None:
    """Progress line on stderr (stdout is left to the workers' results)."""
    sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {msg}\n")
    sys.stderr.flush()


# ------------------------------------------------------------ environment
def machine_info() -> dict[str, Any]:
    """CPU model, cores, memory, OS and Python of this machine."""
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_gib = None
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            mem_gib = int(fh.readline().split()[1]) / 2**20
    except (OSError, ValueError, IndexError):
        pass
    return {
        "cpu": cpu,
        "logical_cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_gib": mem_gib,
        "os": platform.platform(),
        "python": platform.python_version(),
    }


def versions() -> dict[str, str | None]:
    """Versions of every package that takes part, plus the sse_np commit."""
    from importlib import metadata

    out: dict[str, str | None] = {}
    for name in (
        "sse_np",
        "numpy",
        "numba",
        "llvmlite",
        "tokenizers",
        "safetensors",
        "torch",
        "sentence-transformers",
        "transformers",
        "static-embed-runner",
        "model2vec",
        "matplotlib",
        "threadpoolctl",
    ):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    try:
        out["sse_np_git_commit"] = (
            subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10
            ).stdout.strip()
            or None
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "sse_np"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        if dirty and out["sse_np_git_commit"]:
            out["sse_np_git_commit"] += " (+ uncommitted changes in sse_np/)"
    except (OSError, subprocess.SubprocessError):
        out["sse_np_git_commit"] = None
    return out


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


# ---------------------------------------------------------------- workers
def run_worker(spec: dict[str, Any], env: dict[str, str], workdir: Path, timeout: float, python: str) -> dict[str, Any]:
    """Run one ``bench.worker`` task in a fresh interpreter; return its result.

    A failing worker yields ``{"error": ...}`` instead of stopping the suite.
    """
    spec_path = workdir / f"spec_{time.time_ns()}.json"
    # t_spawn is stamped last, right before the spawn, for the cold-start figure.
    spec_path.write_text(json.dumps(dict(spec, t_spawn=time.time())), encoding="utf-8")
    try:
        proc = subprocess.run(
            [python, "-m", "bench.worker", str(spec_path)],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    result = parse_result(proc.stdout)
    if proc.returncode != 0 or result is None:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-8:]
        return {"error": f"exit {proc.returncode}: " + " | ".join(tail)}
    return result


def run_worker_group(
    spec: dict[str, Any], n: int, env: dict[str, str], workdir: Path, timeout: float, python: str
) -> list[dict[str, Any]]:
    """Run ``n`` concurrent ``workers`` tasks; all measure while all are alive.

    Each worker loads and encodes, prints a ready line and waits on its stdin;
    once all are ready each gets a line (measure now), and after every result
    is in their stdin is closed (exit). A failure yields ``[{"error": ...}]``.
    """
    spec_path = workdir / f"spec_{time.time_ns()}.json"
    spec_path.write_text(json.dumps(spec), encoding="utf-8")
    lines: queue.Queue[tuple[int, str | None]] = queue.Queue()
    procs, errs = [], []
    for i in range(n):
        # kept open until the workers are gone, then read and closed below
        errs.append(open(workdir / f"{spec_path.stem}_{i}.err", "w+", encoding="utf-8"))  # noqa: SIM115
        procs.append(
            subprocess.Popen(
                [python, "-m", "bench.worker", str(spec_path)],
                cwd=REPO_ROOT,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=errs[i],
                text=True,
            )
        )
        threading.Thread(target=_pump, args=(i, procs[i].stdout, lines), daemon=True).start()
    deadline = time.monotonic() + timeout
    try:
        _await_lines(lines, n, WORKERS_READY, deadline, errs)
        for p in procs:
            p.stdin.write("measure\n")
            p.stdin.flush()
        found = _await_lines(lines, n, RESULT_PREFIX, deadline, errs)
        return [json.loads(found[i][len(RESULT_PREFIX) :]) for i in range(n)]
    except (RuntimeError, OSError) as exc:  # OSError: a worker's stdin closed under us
        return [{"error": str(exc)}]
    finally:
        _release(procs)
        for fh in errs:
            fh.close()


def _pump(i: int, stream: Any, lines: queue.Queue[tuple[int, str | None]]) -> None:
    """Forward worker ``i``'s stdout lines to ``lines``; None at its end."""
    for line in stream:
        lines.put((i, line.rstrip("\n")))
    lines.put((i, None))


def _await_lines(
    lines: queue.Queue[tuple[int, str | None]], n: int, prefix: str, deadline: float, errs: list[Any]
) -> dict[int, str]:
    """Wait until each of ``n`` workers printed a line starting with ``prefix``."""
    found: dict[int, str] = {}
    while len(found) < n:
        try:
            i, line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise RuntimeError(f"timed out waiting for {n - len(found)} worker(s)") from None
        if line is None:
            errs[i].seek(0)
            tail = errs[i].read().strip().splitlines()[-8:]
            raise RuntimeError(f"worker {i} exited early: " + " | ".join(tail))
        if line.startswith(prefix):
            found[i] = line
    return found


def _release(procs: list[subprocess.Popen]) -> None:
    """Close every worker's stdin (its signal to exit) and reap it."""
    for p in procs:
        with contextlib.suppress(OSError):
            p.stdin.close()
    for p in procs:
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def engine_env(name: str, threads: int | None, numba_cache: Path | None) -> dict[str, str]:
    """Subprocess environment for one engine: thread caps + engine switches."""
    if threads is None:  # cold start: the machine's defaults, as a user gets them
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(REPO_ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        )
    else:
        env = thread_env(threads)
    env.update(ENGINES[name].get("env", {}))
    if numba_cache is not None:  # None: numba's default, the checkout's sse_np/__pycache__
        env["NUMBA_CACHE_DIR"] = str(numba_cache)
    env.setdefault("HF_HUB_OFFLINE", "1")
    return env


# --------------------------------------------------------------- workloads
def run_speed(engines: list[str], cfg: dict[str, Any], ctx: dict[str, Any]) -> dict[str, Any]:
    """Throughput, latency and retrieval for each engine at each thread count."""
    out: dict[str, Any] = {}
    for threads in cfg["threads"]:
        out[str(threads)] = {}
        for name in engines:
            log(f"speed: {name} with {threads} thread(s)")
            spec = {
                "kind": "speed",
                "engine": name,
                "threads": threads,
                "model": ctx["model"],
                "files": ctx["files"],
                "search_only": name == "sse_np",
                **_speed_cfg(cfg),
            }
            res = run_worker(
                spec,
                engine_env(name, threads, ctx["numba_cache"]),
                ctx["workdir"],
                cfg["worker_timeout"],
                ctx["python"],
            )
            if "error" in res:
                log(f"  {name}: {res['error']}")
            out[str(threads)][name] = res
    return out


def _speed_cfg(cfg: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "repeats",
        "min_time",
        "calib_docs",
        "doc_batch_candidates",
        "query_batch",
        "dims_throughput",
        "dims_retrieval",
        "latency_queries",
        "latency_docs",
        "latency_dim",
        "synth_corpus",
        "synth_queries",
    )
    return {k: cfg[k] for k in keys}


def _chosen(speed: dict[str, Any], name: str, threads: int, kind: str = "docs") -> tuple[dict[str, Any], int]:
    """Variant (for ``kind`` texts) and documents batch the calibration chose."""
    res = speed.get(str(threads), {}).get(name, {})
    return res.get(f"variant_{kind}") or {}, int(res.get("doc_batch") or 1024)


def run_coldstart(
    engines: list[str], cfg: dict[str, Any], ctx: dict[str, Any], speed: dict[str, Any]
) -> dict[str, Any]:
    """Fresh process to first vector; sse_np with a warm and an empty numba cache.

    sse_np's default backend ("auto") answers on NumPy while numba loads in
    the background; the "numba" rows set SSE_NP_BACKEND=numba, which loads
    numba's kernels (from a warm cache) before the first vector.
    """
    out: dict[str, Any] = {}
    max_t = max(cfg["threads"])
    for name in engines:
        caches = ["warm", "empty", "numba"] if name == "sse_np" else ["n/a"]
        if name == "sse_np" and ctx["model"].get("shipped"):
            caches.append("shipped")  # weights/ in its own storage (float16), warm cache
        for cache in caches:
            key = name if cache == "n/a" else f"{name}|{cache}"
            log(f"cold start: {key}")
            # Warm = the suite's own cache, which the speed runs filled (and a
            # priming run below tops up): each kernel compiles once per run.
            warm_dir = ctx["numba_cache"]
            spec = {
                "kind": "coldstart",
                "engine": name,
                "model": ctx["model"],
                "threads": max_t,
                "layout": "shipped" if cache == "shipped" else "full",
                "variant": _chosen(speed, name, max_t, "queries")[0],
            }
            env_extra = {"SSE_NP_BACKEND": "numba"} if cache == "numba" else {}
            if cache in ("warm", "numba"):  # prime the cache with one untimed run that loads numba
                run_worker(
                    spec,
                    {**engine_env(name, None, warm_dir), "SSE_NP_BACKEND": "numba"},
                    ctx["workdir"],
                    cfg["worker_timeout"],
                    ctx["python"],
                )
            runs = []
            for i in range(cfg["cold_repeats"]):
                cache_dir = warm_dir if cache != "empty" else ctx["workdir"] / f"numba_empty_{i}_{time.time_ns()}"
                if cache == "shipped" and i == 0:
                    run_worker(
                        spec,
                        {**engine_env(name, None, cache_dir), "SSE_NP_BACKEND": "numba"},
                        ctx["workdir"],
                        cfg["worker_timeout"],
                        ctx["python"],
                    )  # the f16 kernel specialization compiles once too
                runs.append(
                    run_worker(
                        spec,
                        {**engine_env(name, None, cache_dir), **env_extra},
                        ctx["workdir"],
                        cfg["worker_timeout"],
                        ctx["python"],
                    )
                )
            out[key] = {"engine": name, "numba_cache": cache, "runs": runs}
    return out


def run_memory(engines: list[str], cfg: dict[str, Any], ctx: dict[str, Any], speed: dict[str, Any]) -> dict[str, Any]:
    """Peak RSS after load and after encoding, full and (where supported) 4-bit layout."""
    out: dict[str, Any] = {}
    max_t = max(cfg["threads"])
    for name in engines:
        layouts = ["full", "q4"] if name in ("sse_np", "static_embed_runner") else ["full"]
        if name == "sse_np":
            layouts += [k for k in ("shipped", "shipped_q4") if ctx["model"].get(k)]
        variant, batch = _chosen(speed, name, max_t)
        for layout in layouts:
            key = f"{name}|{layout}"
            log(f"memory: {key}")
            spec = {
                "kind": "memory",
                "engine": name,
                "layout": layout,
                "model": ctx["model"],
                "files": ctx["files"],
                "n_texts": cfg["memory_texts"],
                "batch": batch,
                "variant": variant,
            }
            out[key] = run_worker(
                spec, engine_env(name, max_t, ctx["numba_cache"]), ctx["workdir"], cfg["worker_timeout"], ctx["python"]
            )
    return out


def run_bulk(engines: list[str], cfg: dict[str, Any], ctx: dict[str, Any], speed: dict[str, Any]) -> dict[str, Any]:
    """Stream many synthetic texts through each engine with bounded memory."""
    out: dict[str, Any] = {}
    max_t = max(cfg["threads"])
    for name in engines:
        if name == "sse_np_numpy":
            continue
        variant, batch = _chosen(speed, name, max_t)
        n_texts = cfg["bulk_texts"] if name == "sse_np" else cfg["bulk_texts_peers"]
        spec = {
            "kind": "bulk",
            "engine": name,
            "model": ctx["model"],
            "files": ctx["files"],
            "n_texts": n_texts,
            "chunk": cfg["bulk_chunk"],
            "dim": cfg["bulk_dim"],
            "batch": batch,
            "variant": variant,
        }
        env = engine_env(name, max_t, ctx["numba_cache"])
        # A stream keeps caches warm, unlike the timed passes of the speed workers,
        # so every variant that matched on documents gets a short trial here.
        trials = _bulk_variants(speed, name, max_t)
        tried = {}
        if len(trials) > 1:
            for v in trials:
                log(f"bulk: {name} trial {v}")
                r = run_worker(
                    dict(spec, variant=v, n_texts=max(cfg["bulk_chunk"], n_texts // 5)),
                    env,
                    ctx["workdir"],
                    cfg["worker_timeout"],
                    ctx["python"],
                )
                if "error" not in r:
                    tried[json.dumps(v, sort_keys=True)] = r["texts_per_s"]
            if tried:
                spec["variant"] = json.loads(max(tried, key=tried.get))
        log(f"bulk: {name} ({n_texts:,} texts)")
        out[name] = run_worker(spec, env, ctx["workdir"], cfg["worker_timeout"], ctx["python"])
        if tried:
            out[name]["variant_trials"] = tried
    return out


def run_workers(engines: list[str], cfg: dict[str, Any], ctx: dict[str, Any], speed: dict[str, Any]) -> dict[str, Any]:
    """RSS / PSS of ``cfg["workers"]`` concurrent processes of each engine (shared table or not)."""
    out: dict[str, Any] = {}
    max_t = max(cfg["threads"])
    for name in engines:
        layouts = ["full"]
        if name == "sse_np" and ctx["model"].get("shipped"):
            layouts.insert(0, "shipped")  # weights/ in its own storage (float16)
        variant, batch = _chosen(speed, name, max_t)
        for layout in layouts:
            key = f"{name}|{layout}"
            log(f"workers: {cfg['workers']} × {key}")
            folder = ctx["model"][layout]
            spec = {
                "kind": "workers",
                "engine": name,
                "layout": layout,
                "model": ctx["model"],
                "files": ctx["files"],
                "threads": max_t,
                "variant": variant,
                "batch": batch,
                "n_texts": cfg["workers_texts"],
                "weight_file": str(Path(folder) / "model.safetensors"),
            }
            env = engine_env(name, max_t, ctx["numba_cache"])
            if name == "sse_np":  # one worker alone first fills the numba cache: no measured worker
                # carries a compiler's memory (a full run has filled it already; a partial may not)
                run_worker_group(spec, 1, env, ctx["workdir"], cfg["worker_timeout"], ctx["python"])
            procs = run_worker_group(spec, cfg["workers"], env, ctx["workdir"], cfg["worker_timeout"], ctx["python"])
            if "error" not in procs[0] and any(p["rss_mib"] is None for p in procs):
                procs = [{"error": "no /proc/self/smaps_rollup on this system"}]
            if "error" in procs[0]:
                log(f"  {key}: {procs[0]['error']}")
                out[key] = {"error": procs[0]["error"]}
            else:
                out[key] = {"summary": summarize_workers(procs), "processes": procs}
    return out


def summarize_workers(procs: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals over the concurrent workers (MiB); the weight file's share if mapped."""

    def total(key: str) -> float:
        return sum(p[key] for p in procs)

    files = [p["weight_file_mib"] for p in procs if p.get("weight_file_mib")]
    return {
        "n": len(procs),
        "rss_sum_mib": total("rss_mib"),
        "pss_sum_mib": total("pss_mib"),
        "private_per_process_mib": total("private_mib") / len(procs),
        "private_max_mib": max(p["private_mib"] for p in procs),
        "shared_per_process_mib": total("shared_mib") / len(procs),
        "weight_file_mapped": len(files) == len(procs),
        "weight_file_rss_mib": max((f.get("Rss", 0.0) for f in files), default=None),
        "weight_file_size_mib": max((f.get("Size", 0.0) for f in files), default=None),
        "weight_file_pss_sum_mib": sum(f.get("Pss", 0.0) for f in files) if files else None,
        # pages of the file that only one process maps (0 = every resident page is shared)
        "weight_file_private_sum_mib": sum(f.get("Private_Clean", 0.0) + f.get("Private_Dirty", 0.0) for f in files)
        if files
        else None,
    }


def _bulk_variants(speed: dict[str, Any], name: str, threads: int) -> list[dict[str, Any]]:
    """Variants whose vectors matched the reference on documents."""
    res = speed.get(str(threads), {}).get(name, {})
    seen, out = set(), []
    for entry in res.get("calibration", []):
        key = json.dumps(entry["variant"], sort_keys=True)
        if entry.get("ok_docs") and key not in seen:
            seen.add(key)
            out.append(entry["variant"])
    return out


# ------------------------------------------------------------------ inputs
def text_stats(texts: list[str], tokenizer_json: Path) -> dict[str, Any]:
    """Mean characters and tokens (as the model tokenizes them) of a text set."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_json))
    tok.no_padding()
    n_tok = [len(e.ids) for e in tok.encode_batch(texts, add_special_tokens=False)]
    tok.no_truncation()
    n_full = [len(e.ids) for e in tok.encode_batch(texts, add_special_tokens=False)]
    n = max(1, len(texts))
    return {
        "n": len(texts),
        "mean_chars": sum(map(len, texts)) / n,
        "mean_tokens": sum(n_tok) / n,
        "mean_tokens_untruncated": sum(n_full) / n,
        "max_tokens": max(n_tok, default=0),
    }


def prepare_inputs(cfg: dict[str, Any], data_dir: Path, workdir: Path) -> tuple[dict[str, str], dict[str, Any]]:
    """Write the text sets the workers read; return their paths and statistics."""
    queries = data.load_queries(data_dir)
    if cfg["n_queries"]:
        queries = data.sample(queries, cfg["n_queries"], seed=0)
    docs_all = data.load_docs(data_dir)
    docs = data.sample(docs_all, cfg["n_docs"], seed=0)
    corpus = (
        data.load_corpus(data_dir, cfg["corpus"]) if cfg["corpus"] in data.available_datasets(data_dir) else docs_all
    )
    if cfg["corpus_docs"]:
        corpus = data.sample(corpus, cfg["corpus_docs"], seed=1)
    pool = data.sentence_pool(docs_all)
    files = {}
    for name, obj in (("queries", queries), ("docs", docs), ("corpus", corpus), ("pool", pool)):
        path = workdir / f"{name}.json"
        path.write_text(json.dumps(obj), encoding="utf-8")
        files[name] = str(path)
    synth = next(data.synth_chunks(pool, 5000, 5000, seed=2))
    return files, {"queries": queries, "docs": docs, "corpus": corpus, "synthetic": synth}


# -------------------------------------------------------------------- main
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python bench/run.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke size (2-4 minutes); numbers are not meaningful")
    p.add_argument(
        "--out",
        type=Path,
        default=RESULTS_DIR,
        help="folder for RESULTS.md, results.json and results.png (default: bench/results/)",
    )
    p.add_argument(
        "--data",
        type=Path,
        default=REPO_ROOT.parent / "shared" / "data",
        help="BEIR data folder (default: ../shared/data)",
    )
    p.add_argument(
        "--model", default="auto", help="auto (weights/ if present, else random), default, random, or a model folder"
    )
    p.add_argument("--engines", default=",".join(ENGINE_ORDER), help="comma-separated subset of engines")
    p.add_argument(
        "--workloads",
        default="footprint,speed,coldstart,memory,bulk,workers",
        help="comma-separated subset of workloads",
    )
    p.add_argument("--threads", default=None, help="comma-separated thread counts (default 1,2)")
    p.add_argument(
        "--merge",
        action="store_true",
        help="update an existing results.json in --out with the workloads/engines run now",
    )
    return p.parse_args(argv)


def merge_into(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Overlay a partial run on an earlier results dict (engine by engine)."""
    merged = dict(old)
    for section in ("footprint", "coldstart", "memory", "bulk", "workers"):
        if new.get(section):
            merged[section] = {**old.get(section, {}), **new[section]} if section != "footprint" else new[section]
    for threads, block in new.get("speed", {}).items():
        merged.setdefault("speed", {}).setdefault(threads, {}).update(block)
    merged.setdefault("engines", {}).update(new.get("engines", {}))
    merged["meta"] = dict(old["meta"])
    merged["meta"].setdefault("merged_runs", []).append(
        {k: new["meta"][k] for k in ("started_utc", "argv", "load_average_start", "load_average_end", "duration_s")}
    )
    return merged


def main(argv: list[str] | None = None) -> int:
    """Run the suite; returns a process exit code."""
    args = parse_args(argv)
    cfg = dict(QUICK if args.quick else FULL)
    if args.threads:
        cfg["threads"] = [int(t) for t in args.threads.split(",")]
    workloads = set(args.workloads.split(","))
    wanted = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = [e for e in wanted if e not in ENGINES]
    if unknown:
        raise SystemExit(f"unknown engines: {unknown}; choose from {ENGINE_ORDER}")
    if not data.available_datasets(args.data):
        raise SystemExit(f"no BEIR data under {args.data} (use --data)")
    installed = {e: is_installed(e) for e in wanted}
    engines = [e for e in wanted if installed[e]]
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    results: dict[str, Any] = {
        "meta": {
            "started_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "quick": args.quick,
            "argv": sys.argv[1:] if argv is None else argv,
            "config": cfg,
            "machine": machine_info(),
            "versions": versions(),
            "load_average_start": load_average(),
        }
    }
    results["engines"] = {
        e: {"label": ENGINES[e]["label"], "peer": ENGINES[e]["peer"], "installed": installed[e]} for e in wanted
    }
    for e in wanted:
        if not installed[e]:
            log(f"{e}: not installed, skipped")
    with tempfile.TemporaryDirectory(prefix="sse_np_bench_") as tmp:
        workdir = Path(tmp)
        log("preparing model and texts")
        model = data.prepare_model(args.model, workdir / "model", REPO_ROOT)
        files, texts = prepare_inputs(cfg, args.data, workdir)
        tok_json = Path(model["full"]) / "tokenizer.json"
        results["meta"]["model"] = {k: v for k, v in model.items() if k not in ("full", "q4", "shipped", "shipped_q4")}
        results["meta"]["model"]["shipped_layouts"] = [k for k in ("shipped", "shipped_q4") if model.get(k)]
        results["meta"]["texts"] = {k: text_stats(v, tok_json) for k, v in texts.items()}
        results["meta"]["texts"]["corpus"]["name"] = cfg["corpus"]
        # The full run compiles into a cache of its own; the smoke run (--quick) reuses the
        # checkout's, where the tests already compiled the kernels, rather than compile them again.
        ctx = {
            "model": model,
            "files": files,
            "workdir": workdir,
            "python": sys.executable,
            "numba_cache": None if args.quick else workdir / "numba_cache",
        }
        if "footprint" in workloads:
            log("footprint")
            results["footprint"] = footprint.measure()
        previous_file = args.out / "results.json"
        previous = (
            json.loads(previous_file.read_text(encoding="utf-8")) if args.merge and previous_file.is_file() else {}
        )
        # Later workloads use the variants the speed calibration chose (this run's or, when
        # merging without re-running speed, the earlier run's).
        speed = run_speed(engines, cfg, ctx) if "speed" in workloads else previous.get("speed", {})
        results["speed"] = speed if "speed" in workloads else {}
        if "coldstart" in workloads:
            results["coldstart"] = run_coldstart(engines, cfg, ctx, speed)
        if "memory" in workloads:
            results["memory"] = run_memory(engines, cfg, ctx, speed)
        if "bulk" in workloads:
            results["bulk"] = run_bulk(engines, cfg, ctx, speed)
        if "workers" in workloads:
            results["workers"] = run_workers(engines, cfg, ctx, speed)
    results["meta"]["load_average_end"] = load_average()
    results["meta"]["duration_s"] = time.time() - started

    from bench import report

    previous = args.out / "results.json"
    if args.merge and previous.is_file():
        results = merge_into(json.loads(previous.read_text(encoding="utf-8")), results)
    (args.out / "results.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    results_md = args.out / "RESULTS.md"
    kept = report.marked_sections(results_md.read_text(encoding="utf-8") if results_md.exists() else "")
    results_md.write_text(report.render(results) + "".join(f"\n{section}\n" for section in kept), encoding="utf-8")
    chart = report.chart(results, args.out / "results.png")
    log(
        f"wrote {args.out / 'RESULTS.md'}, results.json"
        + (", results.png" if chart else " (no chart: matplotlib missing)")
    )
    log(f"done in {time.time() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
