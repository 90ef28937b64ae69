"""Retrieval benchmark: quantized vectors and exact search against FAISS, and their nDCG@10 cost.

Run from a checkout (needs the test extra's packages plus ``faiss-cpu``, see
bench/requirements.txt)::

    nice -n 10 .venv/bin/python bench/search.py [--docs 1000000] [--threads 1] [--reps 3]

Writes bench/results/SEARCH_RESULTS.md and bench/results/search_results.json.

1. **Speed** on ``--docs`` synthetic documents: sentences of the
   ../shared/data corpora recombined at random (1-6 sentences from one
   dataset each), encoded once with the default model (cached under
   bench/_work/search/, git-ignored), at dim 256 and 64; the real queries of
   the three datasets. Every search runs with the same thread budget
   (``--threads``: BLAS, OpenMP, numba), ours and FAISS's alternating
   within each repetition on the same vectors; queries/s is the best of
   ``--reps`` (the machine is shared; the best is the least disturbed).
2. **Quality**: nDCG@10 (BEIR, linear gain) of every precision on the real
   scifact, nfcorpus and msmarco-dl19-5k, and the overlap of each quantized
   top-10 with the exact float top-10 on the synthetic corpus.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data"
WORK = REPO / "bench" / "_work" / "search"
DATASETS = ("scifact", "nfcorpus", "msmarco-dl19-5k")
DIMS = (256, 64)
K = 10


def _set_threads(n: int) -> None:
    # Before numpy/faiss/numba are imported: every pool gets the same budget.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS", "SSE_NP_THREADS"):
        os.environ[var] = str(n)


def _parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--docs", type=int, default=1_000_000, help="synthetic corpus size (default 1M)")
    p.add_argument("--threads", type=int, default=1, help="threads for every engine (default 1)")
    p.add_argument("--reps", type=int, default=3, help="repetitions of each timed search (best counts)")
    p.add_argument("--single", type=int, default=50, help="queries timed one at a time (latency-style QPS)")
    p.add_argument("--multipliers", default="4,10", help="rescore multipliers for the quality table")
    p.add_argument(
        "--out", default=str(REPO / "bench" / "results"), help="folder for SEARCH_RESULTS.md / search_results.json"
    )
    p.add_argument("--report-only", action="store_true", help="re-render SEARCH_RESULTS.md from search_results.json")
    return p.parse_args()


ARGS = _parse() if __name__ == "__main__" else None
if ARGS is not None:
    _set_threads(ARGS.threads)

import numpy as np  # noqa: E402

sys.path.insert(0, str(REPO))
import sse_np  # noqa: E402
from sse_np.eval import load_beir, query_metrics  # noqa: E402
from sse_np.retrieval import hamming_top_k, semantic_search  # noqa: E402
from sse_np.retrieval.quantization import bytes_per_vector, quantization_ranges, quantize_embeddings  # noqa: E402


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- data


def synthetic_corpus(n_docs: int, seed: int = 0) -> list[str]:
    """Documents of 1-6 sentences drawn from the sentences of one shared dataset."""
    rng = np.random.default_rng(seed)
    pools = []
    for name in DATASETS:
        data = load_beir(DATA / name)
        sents = [s for t in data.doc_texts for s in re.split(r"(?<=[.!?])\s+", t) if len(s) > 20]
        pools.append(sents)
    weights = np.array([len(p) for p in pools], dtype=np.float64)
    which = rng.choice(len(pools), size=n_docs, p=weights / weights.sum())
    lengths = rng.choice(np.arange(1, 7), size=n_docs, p=[0.15, 0.2, 0.25, 0.2, 0.12, 0.08])
    docs = []
    for w, n in zip(which.tolist(), lengths.tolist()):
        pool = pools[w]
        picks = rng.integers(0, len(pool), size=n)
        docs.append(" ".join(pool[i] for i in picks))
    return docs


def corpus_vectors(model: Any, n_docs: int) -> np.ndarray:
    """Un-normalized 256-d vectors of the synthetic corpus (cached): 64-d = normalize(first 64)."""
    WORK.mkdir(parents=True, exist_ok=True)
    path = WORK / f"synthetic_{n_docs}_raw256.npy"
    if path.exists():
        log(f"cached vectors {path.name}")
        return np.load(path, mmap_mode="r")
    t = time.perf_counter()
    docs = synthetic_corpus(n_docs)
    log(
        f"built {n_docs} synthetic docs in {time.perf_counter() - t:.1f} s "
        f"(mean {np.mean([len(d) for d in docs[:10000]]):.0f} chars)"
    )
    t = time.perf_counter()
    vecs = model.encode(docs, 256, normalize=False, batch_size=8192)
    log(f"encoded in {time.perf_counter() - t:.1f} s")
    np.save(path, vecs)
    return vecs


def unit(x: np.ndarray, dim: int) -> np.ndarray:
    v = np.array(x[:, :dim], dtype=np.float32, order="C")
    v /= np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    return v


# --------------------------------------------------------------------------- timing


def best_time(fn: Callable[[], Any], reps: int) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(reps):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def ids_of(results: list[list[dict[str, Any]]]) -> np.ndarray:
    return np.array([[h["corpus_id"] for h in r] for r in results])


def overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Mean |top-k(a) & top-k(b)| / k over queries."""
    return float(np.mean([len(set(x.tolist()) & set(y.tolist())) / len(y) for x, y in zip(a, b)]))


def speed(model: Any, reps: int, n_docs: int, n_single: int) -> dict[str, Any]:
    import faiss
    from sentence_transformers.util.quantization import semantic_search_faiss

    raw = corpus_vectors(model, n_docs)
    queries_text = [t for name in DATASETS for t in load_beir(DATA / name).query_texts]
    q_raw = model.encode(queries_text, 256, normalize=False)
    out: dict[str, Any] = {"n_docs": int(raw.shape[0]), "n_queries": len(queries_text), "k": K, "dims": {}}
    for dim in DIMS:
        log(f"dim {dim}: preparing vectors")
        docs = unit(raw, dim)
        queries = unit(q_raw, dim)
        ranges = quantization_ranges(docs[:100_000])  # calibration sample, as a deployment would keep
        docs_i8 = quantize_embeddings(docs, "int8", ranges=ranges)
        docs_ub = quantize_embeddings(docs, "ubinary")
        flat = faiss.IndexFlatIP(dim)
        flat.add(docs)
        binflat = faiss.IndexBinaryFlat(dim)
        binflat.add(docs_ub)
        sq8 = faiss.IndexScalarQuantizer(dim, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
        sq8.train(docs[:100_000])
        sq8.add(docs)
        single = queries[:n_single]

        methods: dict[str, tuple[str, int, Callable[[np.ndarray], Any]]] = {
            # name: (kind, bytes per doc in RAM, search(queries) -> ids (n, K))
            "sse_np float32 exact": (
                "ours",
                bytes_per_vector(dim, "float32"),
                lambda q: ids_of(semantic_search(q, docs, top_k=K, score_function="dot")),
            ),
            "faiss IndexFlatIP": ("peer", bytes_per_vector(dim, "float32"), lambda q: flat.search(q, K)[1]),
            "sse_np int8 (no rescore)": (
                "ours",
                dim,
                lambda q: ids_of(
                    semantic_search(q, docs_i8, top_k=K, corpus_precision="int8", ranges=ranges, rescore=False)
                ),
            ),
            "sse_np int8 + rescore x4": (
                "ours",
                dim,
                lambda q: ids_of(
                    semantic_search(q, docs_i8, top_k=K, corpus_precision="int8", ranges=ranges, rescore_multiplier=4)
                ),
            ),
            "sse_np int8 asymmetric": (
                "ours",
                dim,
                lambda q: ids_of(
                    semantic_search(q, docs_i8, top_k=K, corpus_precision="int8", ranges=ranges, asymmetric=True)
                ),
            ),
            "faiss IndexScalarQuantizer 8bit": ("peer", dim, lambda q: sq8.search(q, K)[1]),
            "sse_np binary Hamming only": (
                "ours",
                dim // 8,
                lambda q: hamming_top_k(quantize_embeddings(q, "ubinary"), docs_ub, K)[1],
            ),
            "faiss IndexBinaryFlat": (
                "peer",
                dim // 8,
                lambda q: binflat.search(quantize_embeddings(q, "ubinary"), K)[1],
            ),
            "sse_np binary + rescore x4 (bits)": (
                "ours",
                dim // 8,
                lambda q: ids_of(
                    semantic_search(q, docs_ub, top_k=K, corpus_precision="ubinary", rescore_multiplier=4)
                ),
            ),
            "sentence-transformers semantic_search_faiss ubinary + rescore x4": (
                "peer",
                dim // 8,
                lambda q: ids_of(
                    semantic_search_faiss(
                        q, corpus_index=binflat, corpus_precision="ubinary", top_k=K, rescore_multiplier=4
                    )[0]
                ),
            ),
            "sse_np binary + rescore x4 (int8 docs)": (
                "ours",
                dim // 8,
                lambda q: ids_of(
                    semantic_search(
                        q,
                        docs_ub,
                        top_k=K,
                        corpus_precision="ubinary",
                        rescore_multiplier=4,
                        rescore_embeddings=docs_i8,
                        ranges=ranges,
                    )
                ),
            ),
            "sse_np binary + rescore x4 (float32 docs)": (
                "ours",
                dim // 8,
                lambda q: ids_of(
                    semantic_search(
                        q,
                        docs_ub,
                        top_k=K,
                        corpus_precision="ubinary",
                        rescore_multiplier=4,
                        rescore_embeddings=docs,
                        score_function="dot",
                    )
                ),
            ),
        }
        rows: dict[str, dict[str, Any]] = {
            name: {"kind": kind, "bytes_per_doc": b, "batch_s": [], "single_s": []}
            for name, (kind, b, _) in methods.items()
        }
        exact_ids = None
        for rep in range(reps):
            for name, (_, _, fn) in methods.items():  # ours and peers alternate within a repetition
                t = time.perf_counter()
                ids = fn(queries)
                rows[name]["batch_s"].append(time.perf_counter() - t)
                if rep == 0:
                    if exact_ids is None:
                        exact_ids = ids
                    rows[name]["overlap_with_exact@10"] = overlap(ids, exact_ids)
                t = time.perf_counter()
                for i in range(len(single)):
                    fn(single[i : i + 1])
                rows[name]["single_s"].append(time.perf_counter() - t)
            log(
                f"dim {dim} rep {rep + 1}/{reps}: "
                + ", ".join(f"{n.split(' (')[0][:28]} {len(queries) / rows[n]['batch_s'][-1]:.0f}" for n in methods)
            )
        for row in rows.values():
            row["qps_batch"] = len(queries) / min(row["batch_s"])
            row["qps_single"] = len(single) / min(row["single_s"])
        out["dims"][dim] = rows
    return out


# --------------------------------------------------------------------------- quality


def quality(model: Any, multipliers: list[int]) -> dict[str, Any]:
    """nDCG@10 per dataset, dim and precision (rankings of depth 10)."""
    out: dict[str, Any] = {}
    for name in DATASETS:
        data = load_beir(DATA / name)
        d_raw = model.encode(data.doc_texts, 512, normalize=False)
        q_raw = model.encode(data.query_texts, 512, normalize=False)
        out[name] = {}
        for dim in (512, 256, 128, 64):
            docs, queries = unit(d_raw, dim), unit(q_raw, dim)
            ranges = quantization_ranges(docs)  # calibrated on the corpus itself
            i8 = quantize_embeddings(docs, "int8", ranges=ranges)
            ub = quantize_embeddings(docs, "ubinary")
            runs: dict[str, Any] = {
                "float32": semantic_search(queries, docs, top_k=K, score_function="dot"),
                "int8": semantic_search(queries, i8, top_k=K, ranges=ranges, rescore=False),
                "int8 asymmetric": semantic_search(queries, i8, top_k=K, ranges=ranges, asymmetric=True),
                "binary": semantic_search(queries, ub, top_k=K, rescore=False),
            }
            for r in multipliers:
                runs[f"int8 + rescore x{r}"] = semantic_search(
                    queries, i8, top_k=K, ranges=ranges, rescore_multiplier=r
                )
                runs[f"binary + rescore x{r} (bits)"] = semantic_search(queries, ub, top_k=K, rescore_multiplier=r)
                runs[f"binary + rescore x{r} (int8 docs)"] = semantic_search(
                    queries, ub, top_k=K, rescore_multiplier=r, rescore_embeddings=i8, ranges=ranges
                )
                runs[f"binary + rescore x{r} (float32 docs)"] = semantic_search(
                    queries, ub, top_k=K, rescore_multiplier=r, rescore_embeddings=docs, score_function="dot"
                )
            out[name][dim] = {}
            for label, results in runs.items():
                scores = [
                    query_metrics([data.doc_ids[h["corpus_id"]] for h in hits], data.qrels[qid])["ndcg@10"]
                    for qid, hits in zip(data.query_ids, results)
                ]
                out[name][dim][label] = float(np.mean(scores))
        log(f"quality {name}: " + ", ".join(f"{k} {v:.4f}" for k, v in out[name][256].items()))
    return out


def bytes_in_ram(label: str, dim: int) -> tuple[int, int]:
    """(bytes searched in RAM, bytes read per candidate from RAM or disk for rescoring)."""
    if label.startswith("float32"):
        return 4 * dim, 0
    if label.startswith("int8"):
        return dim, 0
    extra = 0
    if "(int8 docs)" in label:
        extra = dim
    elif "(float32 docs)" in label:
        extra = 4 * dim
    return (dim + 7) // 8, extra


# --------------------------------------------------------------------------- report


def summary(res: dict[str, Any]) -> list[str]:
    """The issue's two targets, checked on this run's figures."""
    q, s = res["quality"], res["speed"]["dims"]

    def mean(label: str, dim: int = 256) -> float:
        return float(np.mean([q[n][str(dim)][label] for n in DATASETS]))

    base = mean("float32")
    out = [
        "## Targets",
        "",
        "* **binary + rescore at dim 256 keeps >= 95% of float nDCG@10 at 1/32 of the bytes** "
        f"(32 of 1024 B/doc searched): rescored against the bits alone (everything in 32 B/doc) "
        f"{100 * mean('binary + rescore x4 (bits)') / base:.1f}% (x4), "
        f"{100 * mean('binary + rescore x10 (bits)') / base:.1f}% (x10); rescored against int8 rows "
        "(which may stay on disk: 40 rows read per query) "
        f"{100 * mean('binary + rescore x4 (int8 docs)') / base:.1f}% (x4), "
        f"{100 * mean('binary + rescore x10 (int8 docs)') / base:.1f}% (x10). Float32 mean nDCG@10 {base:.4f}.",
    ]
    pairs = [
        ("sse_np float32 exact", "faiss IndexFlatIP"),
        ("sse_np binary Hamming only", "faiss IndexBinaryFlat"),
        ("sse_np binary + rescore x4 (bits)", "sentence-transformers semantic_search_faiss ubinary + rescore x4"),
    ]
    parts = []
    for ours, peer in pairs:
        for mode in ("batch", "single"):
            ratios = [s[d][ours][f"qps_{mode}"] / s[d][peer][f"qps_{mode}"] for d in s]
            parts.append(
                f"{ours.replace('sse_np ', '')} vs {peer.split(' ')[-1] if 'faiss I' in peer else 'ST+FAISS'} "
                f"({mode}): " + " / ".join(f"{r:.2f}x" for r in ratios)
            )
    out += [
        "* **search QPS within 2x of FAISS's flat indexes (or faster)**, ratio sse_np/FAISS at dim "
        + " / ".join(str(d) for d in s)
        + ": "
        + "; ".join(parts)
        + ".",
        "",
    ]
    return out


def report(res: dict[str, Any]) -> str:
    lines = [
        "# Quantized vectors and exact search",
        "",
        f"Generated by `bench/search.py` on {res['meta']['date']} ({res['meta']['machine']}); "
        f"{res['meta']['threads']} thread(s) for every engine (BLAS, OpenMP, numba); "
        f"sse_np {res['meta']['sse_np']}, numpy {res['meta']['numpy']}, faiss {res['meta']['faiss']}. "
        "The machine's 2 cores were shared with other jobs: ours and FAISS's runs alternate within each "
        "repetition and the best of the repetitions counts, so the *ratios* are the result.",
        "",
    ]
    lines += summary(res)
    q = res["quality"]
    labels = list(next(iter(next(iter(q.values())).values())).keys())
    for dim in (512, 256, 128, 64):
        key = dim if dim in q[DATASETS[0]] else str(dim)
        lines += [
            f"## nDCG@10 at dim {dim} (real corpora; BEIR, linear gain)",
            "",
            "| precision / recipe | bytes/doc searched | + rescore bytes/candidate | "
            + " | ".join(DATASETS)
            + " | mean | % of float32 |",
            "|---|---:|---:|" + "---:|" * (len(DATASETS) + 2),
        ]
        base = np.mean([q[n][key]["float32"] for n in DATASETS])
        for label in labels:
            vals = [q[n][key][label] for n in DATASETS]
            ram, extra = bytes_in_ram(label, dim)
            lines.append(
                f"| {label} | {ram} | {extra or ''} | "
                + " | ".join(f"{v:.4f}" for v in vals)
                + f" | {np.mean(vals):.4f} | {100 * np.mean(vals) / base:.1f}% |"
            )
        lines.append("")
    s = res["speed"]
    lines += [
        f"## Search speed: {s['n_docs']:,} synthetic documents, {s['n_queries']} real queries, top-{s['k']}",
        "",
        "`batch`: all queries in one call; `single`: the first queries one call each. "
        "`overlap@10`: share of the exact float32 top-10 found. Ratios compare with the FAISS peer "
        "on the same vectors in the same run (> 1 = sse_np faster).",
        "",
    ]
    peers = {
        "sse_np float32 exact": "faiss IndexFlatIP",
        "sse_np int8 (no rescore)": "faiss IndexScalarQuantizer 8bit",
        "sse_np int8 + rescore x4": "faiss IndexScalarQuantizer 8bit",
        "sse_np int8 asymmetric": "faiss IndexScalarQuantizer 8bit",
        "sse_np binary Hamming only": "faiss IndexBinaryFlat",
        "sse_np binary + rescore x4 (bits)": "sentence-transformers semantic_search_faiss ubinary + rescore x4",
        "sse_np binary + rescore x4 (int8 docs)": "sentence-transformers semantic_search_faiss ubinary + rescore x4",
        "sse_np binary + rescore x4 (float32 docs)": "sentence-transformers semantic_search_faiss ubinary + rescore x4",
    }
    for dim, rows in s["dims"].items():
        lines += [
            f"### dim {dim}",
            "",
            "| method | bytes/doc in RAM | MB for the corpus | QPS batch | QPS single | vs peer (batch) | "
            "vs peer (single) | overlap@10 |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for name, row in rows.items():
            peer = rows.get(peers.get(name, ""))
            rb = f"{row['qps_batch'] / peer['qps_batch']:.2f}x" if peer else ""
            rs = f"{row['qps_single'] / peer['qps_single']:.2f}x" if peer else ""
            lines.append(
                f"| {name} | {row['bytes_per_doc']} | {row['bytes_per_doc'] * s['n_docs'] / 1e6:.0f} | "
                f"{row['qps_batch']:.0f} | {row['qps_single']:.0f} | {rb} | {rs} | "
                f"{row['overlap_with_exact@10']:.3f} |"
            )
        lines.append("")
    lines += [
        "Rescoring reads `k * multiplier` candidate rows per query from the rescore vectors, which may stay "
        "on disk (`np.load(..., mmap_mode='r')`); the RAM column counts only what is scanned.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    import faiss

    args = ARGS
    out = Path(args.out)
    if args.report_only:
        res = json.loads((out / "search_results.json").read_text())
        (out / "SEARCH_RESULTS.md").write_text(report(res))
        return
    model = sse_np.load(sse_np.default_model_path(), backend="numba")
    model.warmup()
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "threads": args.threads,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "sse_np": sse_np.__version__,
        "numpy": np.__version__,
        "faiss": faiss.__version__,
        "python": platform.python_version(),
    }
    multipliers = [int(x) for x in args.multipliers.split(",")]
    log("quality on the real corpora")
    qual = quality(model, multipliers)
    log("speed on the synthetic corpus")
    spd = speed(model, args.reps, args.docs, args.single)
    res = {"meta": meta, "quality": qual, "speed": spd}
    (out / "search_results.json").write_text(json.dumps(res, indent=1, default=str) + "\n")
    (out / "SEARCH_RESULTS.md").write_text(report(json.loads(json.dumps(res, default=str))))
    log(f"wrote {out / 'SEARCH_RESULTS.md'}")


if __name__ == "__main__":
    main()
