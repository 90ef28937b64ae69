"""One measurement in a fresh process: ``python -m bench.worker SPEC.json``.

The orchestrator (bench/run.py) starts one worker per engine and thread
setting (and per cold start / memory / bulk run), with every thread-pool
environment variable set before Python starts, and reads back one JSON line.

Only the standard library is imported at module level, so the cold-start
task can time the engine's imports from a clean slate.
"""

from __future__ import annotations

import itertools
import json
import math
import sys
import time
from collections.abc import Callable
from typing import Any

from bench.common import emit, proc_status_kib, reset_peak_rss, summarize

PARITY_TOL = 1e-4  # float32 engines vs a float64 reference differ by ~1e-7
TOPK = 10


# ----------------------------------------------------------------- helpers
def _load_json(path: str) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def _batches(texts: list[str], size: int) -> list[list[str]]:
    return [texts[i : i + size] for i in range(0, len(texts), size)]


def _timed_rate(fn: Callable[[], None], n_items: int, repeats: int, min_time: float) -> dict[str, Any]:
    """Items/s of ``fn`` (which processes ``n_items``) over ``repeats`` repeats.

    One untimed warm-up call first; each repeat loops ``fn`` enough times to
    last at least ``min_time`` seconds so timer resolution never matters.
    """
    t = time.perf_counter()
    fn()
    warm = max(time.perf_counter() - t, 1e-6)
    loops = max(1, math.ceil(min_time / warm))
    rates = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(loops):
            fn()
        rates.append(n_items * loops / (time.perf_counter() - t))
    out = summarize(rates)
    out["loops_per_repeat"] = loops
    return out


def _variant(eng: Any, spec: dict[str, Any]) -> dict[str, Any]:
    """The variant the speed calibration chose, else the engine's default for the budget."""
    return spec.get("variant") or eng.variants(int(spec.get("threads") or 1))[0]


def _thread_facts() -> dict[str, Any]:
    """Thread pools as actually configured in this process (for the report)."""
    facts: dict[str, Any] = {}
    try:
        from threadpoolctl import threadpool_info

        facts["blas"] = [
            {k: d.get(k) for k in ("internal_api", "num_threads", "architecture", "version")} for d in threadpool_info()
        ]
    except ImportError:
        facts["blas"] = "threadpoolctl not installed"
    if "numba" in sys.modules:
        numba = sys.modules["numba"]
        facts["numba_threads"] = numba.get_num_threads()
        try:
            facts["numba_threading_layer"] = numba.threading_layer()
        except ValueError:  # no parallel kernel has run in this process
            facts["numba_threading_layer"] = None
    if "torch" in sys.modules:
        facts["torch_threads"] = sys.modules["torch"].get_num_threads()
    return facts


# ------------------------------------------------------------------- speed
def _calibrate(
    eng: Any, spec: dict[str, Any], queries: list[str], docs: list[str], ref: Any, semantics: str
) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
    """Try each variant: parity vs the reference, then a short speed test.

    Parity and speed are judged separately for queries and for documents (a
    variant may be exact on short texts only, e.g. a tokenizer that ignores
    truncation), so the fastest matching variant is returned for each.
    """
    import numpy as np

    model = spec["model"]
    sets = {"queries": queries[:100], "docs": docs[:100]}
    want = {k: ref.encode(v, 256, semantics) for k, v in sets.items()}
    timing = {"queries": (queries, 32), "docs": (docs[: spec["calib_docs"]], 256)}
    log = []
    variants = eng.variants(spec["threads"])
    for variant in variants:
        eng.load(model, "full", variant)
        entry: dict[str, Any] = {"variant": variant}
        for kind, texts in sets.items():
            got = np.vstack([eng.encode(b, 256) for b in _batches(texts, 32)])
            diff = float(np.max(np.abs(got.astype(np.float64) - want[kind])))
            entry[f"diff_{kind}"], entry[f"ok_{kind}"] = diff, diff < PARITY_TOL
        if len(variants) > 1:
            for kind, (texts, size) in timing.items():
                bs = _batches(texts, size)
                entry[f"{kind}_tps"] = _timed_rate(_pass(eng, bs, 512), len(texts), 2, spec["min_time"])["median"]
        log.append(entry)

    def pick(kind: str) -> dict[str, Any]:
        ok = [e for e in log if e[f"ok_{kind}"]] or log
        return max(ok, key=lambda e: e.get(f"{kind}_tps", 0.0))

    return pick("queries"), pick("docs"), log


def _pass(eng: Any, batches: list[list[str]], dim: int) -> Callable[[], None]:
    """One timed pass over ``batches``; engine caches are cleared first so a
    repeat never profits from having seen the same texts before."""

    def run() -> None:
        eng.reset_caches()
        for b in batches:
            eng.encode(b, dim)

    return run


def _pick_doc_batch(eng: Any, spec: dict[str, Any], docs: list[str]) -> tuple[int, dict[str, float]]:
    """Documents per encode call that this engine runs fastest with."""
    cal_docs = docs[: spec["calib_docs"]]
    rates = {}
    for size in spec["doc_batch_candidates"]:
        rates[str(size)] = _timed_rate(_pass(eng, _batches(cal_docs, size), 512), len(cal_docs), 2, spec["min_time"])[
            "median"
        ]
    return int(max(rates, key=rates.get)), rates


def _latency(eng: Any, texts: list[str], dim: int, repeats: int) -> dict[str, Any]:
    """p50 / p99 of single-text calls, one pass over ``texts`` per repeat."""
    import numpy as np

    for t in texts[:20]:
        eng.encode_one(t, dim)
    p50, p99 = [], []
    for _ in range(repeats):
        eng.reset_caches()
        lat = np.empty(len(texts))
        for i, t in enumerate(texts):
            t0 = time.perf_counter_ns()
            eng.encode_one(t, dim)
            lat[i] = time.perf_counter_ns() - t0
        p50.append(float(np.percentile(lat, 50)) / 1e3)
        p99.append(float(np.percentile(lat, 99)) / 1e3)
    return {"p50_us": summarize(p50), "p99_us": summarize(p99), "calls_per_repeat": len(texts)}


def _searcher(backend: str, corpus: Any) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    """Exact top-10 search over ``corpus`` (n, k) for a batch and for one query."""
    if backend == "torch":
        import torch

        c = torch.from_numpy(corpus)

        def batch(q: Any) -> Any:
            return torch.topk(torch.from_numpy(q) @ c.T, TOPK, dim=1).indices

        def single(q: Any) -> Any:
            return torch.topk(c @ torch.from_numpy(q), TOPK).indices

        return batch, single
    import numpy as np

    def batch_np(q: Any) -> Any:
        s = q @ corpus.T
        idx = np.argpartition(s, -TOPK, axis=1)[:, -TOPK:]
        order = np.argsort(-np.take_along_axis(s, idx, axis=1), axis=1)
        return np.take_along_axis(idx, order, axis=1)

    def single_np(q: Any) -> Any:
        s = corpus @ q
        idx = np.argpartition(s, -TOPK)[-TOPK:]
        return idx[np.argsort(-s[idx])]

    return batch_np, single_np


def _truncate_normalize(vectors: Any, k: int) -> Any:
    """Matryoshka: first k dims, re-normalized (= encoding at dim k, docs/reference/spec.md, step 4)."""
    import numpy as np

    v = np.ascontiguousarray(vectors[:, :k], dtype=np.float32)
    v /= np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    return v


def _retrieval(
    eng: Any,
    spec: dict[str, Any],
    queries: list[str],
    corpus_texts: list[str],
    doc_batch: int,
    native: int,
    use: Callable[[str], None],
) -> dict[str, Any]:
    """Queries/s of encode + exact top-10, on a real corpus and a synthetic one."""
    import numpy as np

    backend = getattr(eng, "search_backend", "numpy")
    use("docs")
    real = np.vstack([eng.encode(b, native) for b in _batches(corpus_texts, doc_batch)])
    use("queries")
    rng = np.random.default_rng(0)
    synth = rng.standard_normal((spec["synth_corpus"], native), dtype=np.float32)
    synth_q = queries[: spec["synth_queries"]]
    out: dict[str, Any] = {
        "backend": backend,
        "corpus_docs": len(corpus_texts),
        "synthetic_vectors": int(synth.shape[0]),
        "dims": {},
    }
    with _search_threads(eng, backend, spec, real, synth, queries, out):
        _retrieval_dims(eng, spec, queries, synth_q, real, synth, backend, out)
    return out


def _search_threads(
    eng: Any, backend: str, spec: dict[str, Any], real: Any, synth: Any, queries: list[str], out: dict[str, Any]
) -> Any:
    """BLAS threads for the NumPy search, the faster of 1 and the budget.

    The search is harness code shared by every NumPy engine, so it gets its
    own calibration (small GEMMs often run slower on more OpenBLAS threads);
    torch engines search on their chosen torch thread count.
    """
    import contextlib

    threads = int(spec["threads"])
    if backend != "numpy" or threads == 1:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    pre = [eng.encode(b, real.shape[1]) for b in _batches(queries, 32)]
    batch_real, _ = _searcher(backend, real)
    batch_synth, _ = _searcher(backend, synth)
    rates = {}
    for n in (1, threads):
        with threadpool_limits(limits=n, user_api="blas"):
            rates[n] = _timed_rate(
                lambda: ([batch_real(q) for q in pre], [batch_synth(q) for q in pre[:5]]), len(pre), 3, spec["min_time"]
            )["median"]
    best = max(rates, key=rates.get)
    out["search_blas_threads"] = best
    out["search_blas_calibration"] = {str(k): v for k, v in rates.items()}
    return threadpool_limits(limits=best, user_api="blas")


def _retrieval_dims(
    eng: Any,
    spec: dict[str, Any],
    queries: list[str],
    synth_q: list[str],
    real: Any,
    synth: Any,
    backend: str,
    out: dict[str, Any],
) -> None:
    """The timed part of :func:`_retrieval`, one entry of ``out["dims"]`` per dim."""
    import numpy as np

    reps, min_time = spec["repeats"], spec["min_time"]
    for k in spec["dims_retrieval"]:
        batch, single = _searcher(backend, _truncate_normalize(real, k))
        sbatch, _ = _searcher(backend, _truncate_normalize(synth, k))
        qb = _batches(queries, 32)
        sq = _batches(synth_q, 32)
        res = {
            "batch32": _timed_rate(
                lambda: (eng.reset_caches(), [batch(eng.encode(b, k)) for b in qb]), len(queries), reps, min_time
            ),
            "single": _timed_rate(
                lambda: (eng.reset_caches(), [single(eng.encode_one(q, k)) for q in queries]),
                len(queries),
                reps,
                min_time,
            ),
            "synthetic_batch32": _timed_rate(
                lambda: (eng.reset_caches(), [sbatch(eng.encode(b, k)) for b in sq]), len(synth_q), reps, min_time
            ),
        }
        if spec.get("search_only"):
            pre = [np.ascontiguousarray(eng.encode(b, k)) for b in qb]
            spre = [np.ascontiguousarray(eng.encode(b, k)) for b in sq]
            res["search_only_batch32"] = _timed_rate(lambda: [batch(q) for q in pre], len(queries), reps, min_time)
            res["search_only_synthetic_batch32"] = _timed_rate(
                lambda: [sbatch(q) for q in spre], len(synth_q), reps, min_time
            )
        out["dims"][str(k)] = res


def task_speed(spec: dict[str, Any]) -> dict[str, Any]:
    """Throughput, latency and retrieval QPS of one engine at one thread budget."""
    from bench.engines import ENGINES, Reference, make

    files = spec["files"]
    queries, docs = _load_json(files["queries"]), _load_json(files["docs"])
    corpus = _load_json(files["corpus"])
    eng = make(spec["engine"])
    eng.imports()
    ref = Reference(spec["model"]["full"])
    semantics = ENGINES[spec["engine"]]["semantics"]
    clock = {"start": time.perf_counter()}
    best_q, best_d, calib = _calibrate(eng, spec, queries, docs, ref, semantics)
    clock["calibrated"] = time.perf_counter()
    chosen = {"queries": best_q["variant"], "docs": best_d["variant"]}
    state = {"loaded": calib[-1]["variant"]}

    def use(kind: str) -> None:
        if state["loaded"] != chosen[kind]:
            eng.load(spec["model"], "full", chosen[kind])
            state["loaded"] = chosen[kind]

    use("docs")
    doc_batch, doc_batch_rates = _pick_doc_batch(eng, spec, docs)
    native = int(spec["model"]["dim"])
    reps, min_time = spec["repeats"], spec["min_time"]
    throughput: dict[str, Any] = {"queries": {}, "docs": {}}
    for kind, texts, size in (("queries", queries, spec["query_batch"]), ("docs", docs, doc_batch)):
        use(kind)
        bs = _batches(texts, size)
        for dim in spec["dims_throughput"]:
            throughput[kind][str(dim)] = _timed_rate(_pass(eng, bs, dim), len(texts), reps, min_time)
    clock["throughput"] = time.perf_counter()
    latency = {}
    for kind, texts in (("queries", queries[: spec["latency_queries"]]), ("docs", docs[: spec["latency_docs"]])):
        use(kind)
        latency[kind] = _latency(eng, texts, spec["latency_dim"], reps)
    clock["latency"] = time.perf_counter()
    retrieval = _retrieval(eng, spec, queries, corpus, doc_batch, native, use)
    clock["retrieval"] = time.perf_counter()
    phases = list(clock)
    return {
        "phase_seconds": {b: clock[b] - clock[a] for a, b in itertools.pairwise(phases)},
        "engine": spec["engine"],
        "threads": spec["threads"],
        "variant_queries": chosen["queries"],
        "variant_docs": chosen["docs"],
        "parity_max_abs_diff": {"queries": best_q["diff_queries"], "docs": best_d["diff_docs"]},
        "parity_ok": best_q["ok_queries"] and best_d["ok_docs"],
        "calibration": calib,
        "doc_batch": doc_batch,
        "doc_batch_rates": doc_batch_rates,
        "config": eng.describe(),
        "thread_facts": _thread_facts(),
        "throughput": throughput,
        "latency": latency,
        "retrieval": retrieval,
    }


# -------------------------------------------------------------- cold start
def task_coldstart(spec: dict[str, Any], t_wall0: float, t0: float) -> dict[str, Any]:
    """Seconds from this process' start to its first vector, by phase."""
    from bench import engines

    eng = engines.make(spec["engine"])
    eng.imports()
    t_import = time.perf_counter()
    eng.load(spec["model"], spec.get("layout", "full"), {**_variant(eng, spec), "cold": True})
    t_load = time.perf_counter()
    vec = eng.encode_one("how fast is a static embedding model on a cpu?", 256)
    t_first = time.perf_counter()
    assert vec.shape[-1] == 256
    return {
        "engine": spec["engine"],
        "import_s": t_import - t0,
        "load_s": t_load - t_import,
        "first_encode_s": t_first - t_load,
        "import_to_first_vector_s": t_first - t0,
        "spawn_to_first_vector_s": (t_wall0 + (t_first - t0)) - spec["t_spawn"],
    }


# ------------------------------------------------------------------ memory
def task_memory(spec: dict[str, Any]) -> dict[str, Any]:
    """Peak RSS after loading and after encoding ``n_texts`` texts."""
    import numpy as np

    from bench.data import synth_chunks
    from bench.engines import make

    eng = make(spec["engine"])
    eng.imports()
    texts = next(synth_chunks(_load_json(spec["files"]["pool"]), spec["n_texts"], spec["n_texts"], seed=1))
    base = proc_status_kib("VmRSS")
    reset_ok = reset_peak_rss()
    eng.load(spec["model"], spec["layout"], spec.get("variant") or {})
    after_load_peak, after_load_rss = proc_status_kib("VmHWM"), proc_status_kib("VmRSS")
    native = int(spec["model"]["dim"])
    out = np.empty((len(texts), native), dtype=np.float32)
    bsz = spec["batch"]
    for i in range(0, len(texts), bsz):
        out[i : i + bsz] = eng.encode(texts[i : i + bsz], native)
    return {
        "engine": spec["engine"],
        "layout": spec["layout"],
        "n_texts": len(texts),
        "batch": bsz,
        "rss_before_load_mib": base / 1024,
        "peak_after_load_mib": after_load_peak / 1024,
        "rss_after_load_mib": after_load_rss / 1024,
        "peak_after_encode_mib": proc_status_kib("VmHWM") / 1024,
        "output_array_mib": out.nbytes / 2**20,
        "peak_reset_ok": reset_ok,
        "checksum": float(out[:, 0].sum()),
    }


# ----------------------------------------------------------------- workers
WORKERS_READY = "BENCH_WORKER_READY"
_SMAPS_FIELDS = (
    "Rss",
    "Pss",
    "Shared_Clean",
    "Shared_Dirty",
    "Private_Clean",
    "Private_Dirty",
    "Pss_Anon",
    "Pss_File",
    "Anonymous",
)


def smaps_rollup_kib(path: str = "/proc/self/smaps_rollup") -> dict[str, int]:
    """The memory figures of ``/proc/self/smaps_rollup`` (KiB); empty where unavailable."""
    out: dict[str, int] = {}
    try:
        with open(path, encoding="ascii") as fh:
            for line in fh:
                key, _, rest = line.partition(":")
                if key in _SMAPS_FIELDS:
                    out[key] = int(rest.split()[0])
    except (OSError, ValueError, IndexError):
        return {}
    return out


def file_mapping_kib(target: str, path: str = "/proc/self/smaps") -> dict[str, int] | None:
    """Size, Rss, Pss, Shared_Clean, Private_* (KiB) summed over the mappings of file ``target``.

    None when the file is not mapped (the engine read it into its own memory).
    """
    import os

    target = os.path.realpath(target)
    out: dict[str, int] = {}
    inside = False
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                head = line.split(maxsplit=5)
                if head and not head[0].endswith(":"):  # a mapping's header line
                    inside = len(head) == 6 and os.path.realpath(head[5].strip()) == target
                    out["mappings"] = out.get("mappings", 0) + int(inside)
                elif inside and head[0][:-1] in ("Size", *_SMAPS_FIELDS[:6]):
                    out[head[0][:-1]] = out.get(head[0][:-1], 0) + int(head[1])
    except (OSError, ValueError, IndexError):
        return None
    return out if out.get("mappings") else None


def task_workers(spec: dict[str, Any]) -> dict[str, Any]:
    """One of several concurrent workers: load, encode, then measure when told to.

    Prints a ready line and waits for a line on stdin, so the orchestrator can
    have every worker loaded before any measures (the PSS of a page depends on
    how many processes map it at that moment).
    """
    import os

    import numpy as np

    from bench.engines import make

    eng = make(spec["engine"])
    eng.imports()
    # The documents sample (a small file): the big sentence pool would add its
    # own tens of MiB to every process and blur the engines' figures.
    texts = _load_json(spec["files"]["docs"])[: spec["n_texts"]]
    eng.load(spec["model"], spec["layout"], _variant(eng, spec))
    native, bsz, checksum = int(spec["model"]["dim"]), spec["batch"], 0.0
    for i in range(0, len(texts), bsz):
        checksum += float(np.asarray(eng.encode(texts[i : i + bsz], native))[:, 0].sum())
    sys.stdout.write(WORKERS_READY + "\n")
    sys.stdout.flush()
    if not sys.stdin.readline():
        raise SystemExit("orchestrator went away before the measurement")
    roll = {k: v / 1024 for k, v in smaps_rollup_kib().items()}
    weight = file_mapping_kib(spec["weight_file"])
    return {
        "engine": spec["engine"],
        "layout": spec["layout"],
        "pid": os.getpid(),
        "n_texts": len(texts),
        "batch": bsz,
        "rss_mib": roll.get("Rss"),
        "pss_mib": roll.get("Pss"),
        "private_mib": roll["Private_Clean"] + roll["Private_Dirty"] if roll else None,
        "shared_mib": roll["Shared_Clean"] + roll["Shared_Dirty"] if roll else None,
        "smaps_rollup_mib": roll,
        "weight_file_mib": None
        if weight is None
        else {k: v if k == "mappings" else v / 1024 for k, v in weight.items()},
        "checksum": checksum,
    }


# -------------------------------------------------------------------- bulk
def task_bulk(spec: dict[str, Any]) -> dict[str, Any]:
    """Stream ``n_texts`` synthetic texts through the engine in chunks."""
    import numpy as np

    from bench.data import synth_chunks
    from bench.engines import make

    eng = make(spec["engine"])
    eng.imports()
    eng.load(spec["model"], "full", spec.get("variant") or {})
    dim, bsz = spec["dim"], spec["batch"]
    eng.encode(["warm-up: compile or load kernels before the clock starts"] * 4, dim)
    rss_loaded = proc_status_kib("VmRSS")
    pool = _load_json(spec["files"]["pool"])
    encode_s, rates, checksum, n_done = 0.0, [], 0.0, 0
    t_wall = time.perf_counter()
    for chunk in synth_chunks(pool, spec["n_texts"], spec["chunk"], seed=2):
        t = time.perf_counter()
        for i in range(0, len(chunk), bsz):
            # A real indexer would write these to disk; a checksum keeps them live.
            checksum += float(np.asarray(eng.encode(chunk[i : i + bsz], dim))[:, 0].sum())
        dt = time.perf_counter() - t
        encode_s += dt
        rates.append(len(chunk) / dt)
        n_done += len(chunk)
    wall = time.perf_counter() - t_wall
    return {
        "engine": spec["engine"],
        "n_texts": n_done,
        "dim": dim,
        "batch": bsz,
        "chunk": spec["chunk"],
        "texts_per_s": n_done / encode_s,
        "texts_per_s_incl_synthesis": n_done / wall,
        "chunk_rates": summarize(rates),
        "encode_s": encode_s,
        "wall_s": wall,
        "rss_after_load_mib": rss_loaded / 1024,
        "peak_rss_mib": proc_status_kib("VmHWM") / 1024,
        "checksum": checksum,
    }


def main(argv: list[str]) -> int:
    """Run the task described by the JSON file ``argv[1]`` and print its result."""
    t_wall0, t0 = time.time(), time.perf_counter()
    spec = _load_json(argv[1])
    kind = spec["kind"]
    if kind == "coldstart":
        result = task_coldstart(spec, t_wall0, t0)
    elif kind == "speed":
        result = task_speed(spec)
    elif kind == "memory":
        result = task_memory(spec)
    elif kind == "bulk":
        result = task_bulk(spec)
    elif kind == "workers":
        result = task_workers(spec)
    else:
        raise SystemExit(f"unknown task kind {kind!r}")
    emit(result)
    if kind == "workers":
        sys.stdin.read()  # stay alive (and mapped) until the orchestrator closes stdin
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
