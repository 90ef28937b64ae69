"""Render the results dict of bench/run.py as RESULTS.md and a PNG chart.

Convention for every ratio: "N×" = how many times better sse_np (numba) is
than that row on that figure, from medians of the same run: throughput and
QPS ratio = sse_np / row, times and sizes ratio = row / sse_np. So > 1 means
sse_np is faster or smaller, < 1 means the row is.
"""

from __future__ import annotations

import json
import math
import re
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

BASE = "sse_np"
_LAYOUTS = {
    "full": "full (float32)",
    "q4": "4-bit",
    "shipped": "weights/ as shipped",
    "shipped_q4": "weights/q4 as shipped",
}


# ------------------------------------------------------------- formatting
def num(x: float | None) -> str:
    """Compact human number: 12,345 / 123 / 12.3 / 1.23 / 0.123."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    ax = abs(x)
    if ax >= 1000:
        return f"{x:,.0f}"
    if ax >= 100:
        return f"{x:.0f}"
    if ax >= 10:
        return f"{x:.1f}"
    if ax >= 1:
        return f"{x:.2f}"
    return f"{x:.3g}"


def spread(s: dict[str, Any] | None) -> str:
    """``median [min–max]`` of a summary dict."""
    if not s or not s.get("n"):
        return "–"
    return f"{num(s['median'])} [{num(s['min'])}–{num(s['max'])}]"


def ratio(base: float | None, other: float | None, higher_better: bool) -> str:
    """The "N×" cell (see module docstring)."""
    if not base or not other:
        return ""
    r = base / other if higher_better else other / base
    return f"{r:.2f}×" if r < 10 else f"{r:.1f}×"


def _label(results: dict[str, Any], name: str) -> str:
    return results.get("engines", {}).get(name, {}).get("label", name)


def _layout_row(results: dict[str, Any], key: str, r: dict[str, Any]) -> tuple[str, str, str, list[str] | None]:
    """For an ``engine|layout`` result: engine, layout, row label, and the row to show if the run failed."""
    name, _, layout = key.partition("|")
    label = f"{_label(results, name)}, {_LAYOUTS.get(layout, layout)}"
    return name, layout, label, ([label, f"failed: {r['error'][:120]}"] if "error" in r else None)


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _get(d: Any, *keys: str) -> Any:
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def _med(d: Any, *keys: str) -> float | None:
    s = _get(d, *keys)
    return s.get("median") if isinstance(s, dict) else None


def _not_installed(results: dict[str, Any]) -> list[str]:
    return [n for n, e in results.get("engines", {}).items() if not e.get("installed")]


def _engine_rows(
    results: dict[str, Any], block: dict[str, Any], cells: Callable[[str, dict[str, Any], dict[str, Any]], list[str]]
) -> list[list[str]]:
    """One row per engine of ``block``; failed and missing engines get a note."""
    rows = []
    base = block.get(BASE, {})
    for name, res in block.items():
        if "error" in res:
            rows.append([_label(results, name), f"failed: {res['error'][:120]}"])
            continue
        rows.append([_label(results, name), *cells(name, res, base)])
    for name in _not_installed(results):
        rows.append([_label(results, name), "not installed"])
    return rows


# ---------------------------------------------------------------- sections
def _setup(results: dict[str, Any]) -> str:
    meta = results["meta"]
    m, cfg, model = meta["machine"], meta["config"], meta.get("model", {})
    v = meta["versions"]
    out = ["## Setup", ""]
    out.append(
        f"- Machine: {m['cpu']}, {m['logical_cores']} logical cores ({m['usable_cores']} usable), "
        f"{num(m['memory_gib'])} GiB RAM; {m['os']}; Python {m['python']}."
    )
    out.append(
        f"- Load average (1/5/15 min) at start {meta.get('load_average_start')}, at end {meta.get('load_average_end')}."
    )
    trunc = model.get("tokenizer_truncation")
    out.append(
        f"- Model: {model.get('label')} — {model.get('vocab_size')} × {model.get('dim')} "
        f"(stored as {model.get('table_dtype_source')}), table sha256 {model.get('table_sha256_16')}…; "
        f"tokenizer truncation: {f'{trunc} tokens' if trunc else 'off'}. Every engine reads the same "
        "float32 files written by the bench (full-precision layout; the 4-bit layout is quantized "
        "from it)"
        + (
            "; sse_np also loads weights/ as shipped in the memory and cold-start rows."
            if model.get("shipped_layouts")
            else "."
        )
    )
    out.append(
        f"- Threads: {', '.join(map(str, cfg['threads']))}; each setting in its own subprocess with "
        "OMP/OPENBLAS/MKL/NUMBA/RAYON thread counts set and TOKENIZERS_PARALLELISM=false at 1 thread."
    )
    out.append(
        f"- Repeats: median of {cfg['repeats']} repeats, spread = [min–max]; each repeat lasts "
        f"≥ {cfg['min_time']} s. Query batch size {cfg['query_batch']}; document batch size chosen "
        f"per engine from {cfg['doc_batch_candidates']} (see configuration)."
    )
    vers = ", ".join(f"{k} {val}" for k, val in v.items() if val)
    out.append(f"- Versions: {vers}.")
    if _not_installed(results):
        out.append(f"- Not installed (skipped): {', '.join(_label(results, n) for n in _not_installed(results))}.")
    out += ["", "Texts (tokens as the model's tokenizer produces them):", ""]
    rows = []
    for name, t in meta.get("texts", {}).items():
        rows.append(
            [
                name + (f" ({t['name']})" if "name" in t else ""),
                f"{t['n']:,}",
                num(t["mean_chars"]),
                num(t["mean_tokens"]),
                num(t["mean_tokens_untruncated"]),
            ]
        )
    out.append(_table(["set", "texts", "mean chars", "mean tokens", "mean tokens untruncated"], rows))
    return "\n".join(out)


def _configuration(results: dict[str, Any]) -> str:
    out = [
        "## How each engine was configured",
        "",
        "Knobs without an obvious best value were calibrated in the same run: each variant was "
        "checked for parity against a float64 NumPy implementation of docs/reference/spec.md (max |Δ| at dim 256, "
        "over 100 queries and over 100 documents separately) and timed on the queries (batch 32) and "
        "a documents subset; for queries and for documents the fastest variant that matches on that "
        "kind of text was kept (✗ = does not match). Then the documents batch size was picked the same "
        "way. Caches that remember texts (sse_np's chunk cache, static-embed-runner's word cache) are "
        "cleared before every timed pass, so no repeat profits from having seen the same texts "
        "(words repeated within a pass still hit).",
        "",
    ]
    notes = {
        "sse_np": "`sse_np.load(folder, threads=<thread budget>)` (tokenizer and kernel threads; "
        "NUMBA_NUM_THREADS is set to the budget too), `encode(batch, dim=k, batch_size=len(batch))`.",
        "sse_np_numpy": "the same with `SSE_NP_DISABLE_NUMBA=1` (pure NumPy path).",
        "torch_ref": "tokenizers `encode_batch` (no padding, no special tokens) → `nn.EmbeddingBag(mode='mean')` "
        "→ DyT → `[:k]` → `F.normalize`, under `torch.inference_mode()`; torch threads calibrated "
        "(its pool competes with the tokenizers pool).",
        "sentence_transformers": "`SentenceTransformer(modules=[StaticEmbedding(tokenizer, table), DyT])`, "
        "`encode(batch, batch_size=len(batch), truncate_dim=k, normalize_embeddings=True)` "
        "on CPU; torch threads calibrated.",
        "static_embed_runner": "`StaticEmbedRunner.load(folder, tokenizer_backend=…)` with the DyT head attached "
        "by the bench (its loader ignores `dyt.*` in the full-precision layout and would "
        "return un-DyT'd vectors); dense f32 table; `encode(batch, truncate_dim=k)`. Its "
        'default pure-Python tokenizer ("lite") ignores tokenizer.json truncation, so '
        "it qualifies only on texts whose vectors still match (short queries); elsewhere "
        'its `tokenizers` backend ("rust") is used. 4-bit memory runs use its '
        "`table='q4'` mode.",
        "model2vec": "`StaticModel(vectors=table[:, :k], tokenizer, normalize=True, max_length=<tokenizer "
        "truncation>)` per dim; no DyT (it has no such head) and it drops [UNK] ids, so its "
        "parity is checked against that StaticEmbedding-style reference.",
    }
    rows = []
    for threads, block in results.get("speed", {}).items():
        for name, res in block.items():
            if "error" in res:
                continue
            tried = []
            for c in res.get("calibration", []):
                bits = ", ".join(f"{k}={val}" for k, val in c["variant"].items()) or "default"
                parity = (
                    f"Δ queries {c['diff_queries']:.1e}{'' if c['ok_queries'] else ' ✗'}, "
                    f"docs {c['diff_docs']:.1e}{'' if c['ok_docs'] else ' ✗'}"
                )
                perf = f"; {num(c['queries_tps'])} q/s, {num(c['docs_tps'])} d/s" if "queries_tps" in c else ""
                tried.append(f"{bits}: {parity}{perf}")

            def fmt(v: dict[str, Any]) -> str:
                return ", ".join(f"{k}={val}" for k, val in v.items()) or "default"

            vq, vd = res.get("variant_queries", {}), res.get("variant_docs", {})
            chosen = fmt(vq) if vq == vd else f"queries: {fmt(vq)}; docs: {fmt(vd)}"
            batches = ", ".join(f"{b}: {num(r)}/s" for b, r in res.get("doc_batch_rates", {}).items())
            rows.append(
                [_label(results, name), threads, chosen, f"{res.get('doc_batch')} ({batches})", "<br>".join(tried)]
            )
    out += [f"- **{_label(results, n)}**: {t}" for n, t in notes.items() if n in results.get("engines", {})]
    out += [
        "",
        _table(
            ["engine", "threads", "chosen", "docs batch (docs/s by size)", "variants tried (parity Δ, speed)"], rows
        ),
    ]
    return "\n".join(out)


def _throughput(results: dict[str, Any]) -> str:
    cfg = results["meta"]["config"]
    out = [
        "## 1. Throughput (texts/s)",
        "",
        "Median [min–max] texts/s; N× = sse_np's throughput ÷ this row's (same threads, same dim).",
    ]
    for wl, title in (
        ("queries", f"Short queries, batch {cfg['query_batch']}"),
        ("docs", "Long documents (corpus sample)"),
    ):
        for threads, block in results.get("speed", {}).items():
            dims = [str(d) for d in cfg["dims_throughput"]]
            out += ["", f"**{title}, {threads} thread(s)**", ""]
            rows = _engine_rows(
                results,
                block,
                lambda n, r, b: sum(
                    (
                        [
                            spread(_get(r, "throughput", wl, d)),
                            ""
                            if n == BASE
                            else ratio(_med(b, "throughput", wl, d), _med(r, "throughput", wl, d), True),
                        ]
                        for d in dims
                    ),
                    [],
                ),
            )
            out.append(_table(["engine", *sum(([f"dim {d}", "×"] for d in dims), [])], rows))
    return "\n".join(out)


def _latency(results: dict[str, Any]) -> str:
    cfg = results["meta"]["config"]
    out = [
        "## 2. Latency (one text per call, µs)",
        "",
        f"dim {cfg['latency_dim']}; p50 and p99 of each pass, median [min–max] over passes; "
        "N× = this row's latency ÷ sse_np's.",
    ]
    for threads, block in results.get("speed", {}).items():
        out += ["", f"**{threads} thread(s)**", ""]
        cols = [("queries", "p50_us"), ("queries", "p99_us"), ("docs", "p50_us"), ("docs", "p99_us")]
        rows = _engine_rows(
            results,
            block,
            lambda n, r, b: sum(
                (
                    [
                        spread(_get(r, "latency", w, p)),
                        "" if n == BASE else ratio(_med(b, "latency", w, p), _med(r, "latency", w, p), False),
                    ]
                    for w, p in cols
                ),
                [],
            ),
        )
        out.append(_table(["engine", "query p50", "×", "query p99", "×", "doc p50", "×", "doc p99", "×"], rows))
    return "\n".join(out)


def _retrieval(results: dict[str, Any]) -> str:
    cfg = results["meta"]["config"]
    texts = results["meta"].get("texts", {})
    corpus = texts.get("corpus", {})
    dims = [str(d) for d in cfg["dims_retrieval"]]
    out = [
        "## 3. Retrieval (queries/s: encode the query + exact top-10)",
        "",
        f"Corpus: {corpus.get('name', '?')} ({corpus.get('n', '?'):,} documents, encoded once by each "
        f"engine) and {cfg['synth_corpus']:,} random unit vectors; corpus vectors at dim k are the first k "
        "dims re-normalized (what encoding at dim k gives). NumPy engines search with a BLAS matmul + "
        "argpartition (at 2 threads the search's BLAS thread count is calibrated per worker: "
        f"{_search_blas(results)}), torch engines with matmul + topk on their chosen torch threads. "
        "N× = sse_np QPS ÷ this row's.",
    ]
    modes = (
        ("batch32", "queries in batches of 32, real corpus"),
        ("single", "one query per call, real corpus"),
        ("synthetic_batch32", f"batches of 32, {cfg['synth_corpus']:,} synthetic vectors"),
    )
    for mode, title in modes:
        for threads, block in results.get("speed", {}).items():
            out += ["", f"**{title}, {threads} thread(s)**", ""]
            rows = _engine_rows(
                results,
                block,
                lambda n, r, b: sum(
                    (
                        [
                            spread(_get(r, "retrieval", "dims", d, mode)),
                            ""
                            if n == BASE
                            else ratio(
                                _med(b, "retrieval", "dims", d, mode), _med(r, "retrieval", "dims", d, mode), True
                            ),
                        ]
                        for d in dims
                    ),
                    [],
                ),
            )
            out.append(_table(["engine", *sum(([f"dim {d}", "×"] for d in dims), [])], rows))
    out += ["", f"**How much faster smaller vectors retrieve (sse_np, QPS at dim k ÷ QPS at dim {dims[0]})**", ""]
    rows = []
    for threads, block in results.get("speed", {}).items():
        r = block.get(BASE, {})
        for mode in ("batch32", "single", "synthetic_batch32", "search_only_batch32", "search_only_synthetic_batch32"):
            ref = _med(r, "retrieval", "dims", dims[0], mode)
            if not ref:
                continue
            rows.append(
                [f"{threads} thread(s), {mode.replace('_', ' ')}"]
                + [
                    f"{num(_med(r, 'retrieval', 'dims', d, mode))} ({_med(r, 'retrieval', 'dims', d, mode) / ref:.2f}×)"
                    for d in dims
                ]
            )
    out.append(_table(["sse_np mode"] + [f"dim {d} QPS (vs {dims[0]})" for d in dims], rows))
    return "\n".join(out)


def _search_blas(results: dict[str, Any]) -> str:
    """Which BLAS thread count each NumPy engine's search ran with."""
    picks = []
    for block in results.get("speed", {}).values():
        for name, res in block.items():
            n = _get(res, "retrieval", "search_blas_threads")
            if n is not None:
                picks.append(f"{_label(results, name)} {n}")
    return "chose " + ", ".join(picks) if picks else "n/a"


def _coldstart(results: dict[str, Any]) -> str:
    from bench.common import summarize

    out = [
        "## 4. Cold start (fresh process → first vector, seconds)",
        "",
        "A new interpreter per run; the model file is in the OS page cache. sse_np's default backend "
        '("auto") answers the first calls on NumPy while numba loads in a background thread (same '
        "bits), with a warm numba cache (NUMBA_CACHE_DIR primed by an earlier process) or an empty one "
        '(a new empty NUMBA_CACHE_DIR per run). "backend=numba" (SSE_NP_BACKEND=numba) loads numba\'s '
        "kernels from the warm cache before the first vector. N× = this row's import→first vector ÷ "
        "sse_np's (default backend, warm cache).",
        "",
    ]
    cs = results.get("coldstart", {})
    summ: dict[str, dict[str, Any]] = {}
    for key, entry in cs.items():
        ok = [r for r in entry["runs"] if "error" not in r]
        summ[key] = {
            f: summarize(r[f] for r in ok)
            for f in ("import_s", "load_s", "first_encode_s", "import_to_first_vector_s", "spawn_to_first_vector_s")
        }
        summ[key]["errors"] = [r["error"] for r in entry["runs"] if "error" in r]
    base = _med(summ.get(f"{BASE}|warm", {}), "import_to_first_vector_s")
    rows = []
    for key, s in summ.items():
        name, _, cache = key.partition("|")
        label = _label(results, name) + (
            ", weights/ as shipped, warm numba cache"
            if cache == "shipped"
            else ", backend=numba, warm numba cache"
            if cache == "numba"
            else f", {cache} numba cache"
            if cache
            else ""
        )
        if s["errors"] and not s["import_s"]["n"]:
            rows.append([label, f"failed: {s['errors'][0][:120]}"])
            continue
        rows.append(
            [
                label,
                spread(s["import_s"]),
                spread(s["load_s"]),
                spread(s["first_encode_s"]),
                spread(s["import_to_first_vector_s"]),
                spread(s["spawn_to_first_vector_s"]),
                "" if key == f"{BASE}|warm" else ratio(base, _med(s, "import_to_first_vector_s"), False),
            ]
        )
    rows += [[_label(results, n), "not installed"] for n in _not_installed(results)]
    out.append(
        _table(
            ["engine", "imports", "load", "first encode", "import → first vector", "spawn → first vector", "×"], rows
        )
    )
    return "\n".join(out)


def _memory(results: dict[str, Any]) -> str:
    mem = results.get("memory", {})
    n = next((r.get("n_texts") for r in mem.values() if "n_texts" in r), None)
    out = [
        "## 5. Memory (RSS, MiB)",
        "",
        f"Peak RSS (VmHWM) after loading and after encoding {n:,} synthetic texts at the native dim "
        "into a preallocated float32 array (counted for every engine); Δ = over the RSS before "
        "loading (interpreter, imports and the text list). Batches of the engine's chosen documents "
        "batch size. N× = this row's peak after encoding ÷ sse_np's with the same layout."
        if n
        else "",
        "",
    ]
    rows = []
    for key, r in mem.items():
        name, layout, label, failed = _layout_row(results, key, r)
        if failed:
            rows.append(failed)
            continue
        base = mem.get(f"{BASE}|{layout}") or mem.get(f"{BASE}|full", {})
        before = r["rss_before_load_mib"]
        rows.append(
            [
                label,
                num(before),
                f"{num(r['peak_after_load_mib'])} (Δ {num(r['peak_after_load_mib'] - before)})",
                f"{num(r['peak_after_encode_mib'])} (Δ {num(r['peak_after_encode_mib'] - before)})",
                num(r["output_array_mib"]),
                "" if name == BASE else ratio(base.get("peak_after_encode_mib"), r["peak_after_encode_mib"], False),
            ]
        )
    rows += [[_label(results, n_), "not installed"] for n_ in _not_installed(results)]
    out.append(
        _table(
            ["engine, layout", "RSS before load", "peak after load", "peak after encoding", "output array", "×"], rows
        )
    )
    return "\n".join(out)


def _footprint(results: dict[str, Any]) -> str:
    fp = results.get("footprint")
    if not fp:
        return ""
    out = [
        "## 6. Installed footprint (MiB on disk)",
        "",
        'From each installed distribution\'s RECORD. "closure" adds every run-time requirement '
        "(no extras), as pip installs them. N× = this set's closure ÷ sse_np's (with numba).",
        "",
    ]
    out.append(
        _table(
            ["package", "MiB"],
            [[k, num(v) if v is not None else "not installed"] for k, v in fp["packages_mib"].items()],
        )
    )
    sets = fp["sets"]
    base = next(iter(sets.values()))["closure_mib"]
    rows = []
    for label, s in sets.items():
        if not s["installed"]:
            rows.append([label, "not installed", "", "", ""])
            continue
        rows.append(
            [
                label,
                num(s["direct_mib"]),
                num(s["closure_mib"]),
                str(len(s["closure"])),
                ratio(base, s["closure_mib"], False),
            ]
        )
    out += ["", _table(["dependency set", "these packages", "closure", "distributions", "×"], rows)]
    return "\n".join(out)


def _bulk(results: dict[str, Any]) -> str:
    bulk = results.get("bulk", {})
    first = next((r for r in bulk.values() if "n_texts" in r), {})
    out = [
        "## 7. Bulk encoding (streamed in chunks)",
        "",
        "Synthetic texts (1–3 corpus sentences each, the same sequence for every engine), generated "
        f"{first.get('chunk', 0):,} at a time and encoded at dim {first.get('dim')} in batches of the "
        "engine's chosen documents batch size; vectors are reduced to a checksum (a real indexer would "
        "write them out), so memory stays bounded. Peers stream fewer texts than sse_np (their rate "
        "is steady long before that). Chunk rates = texts/s per chunk, median [min–max]. "
        "N× = sse_np texts/s ÷ this row's. Engines with several matching variants (tokenizer "
        "backend, torch or BLAS threads) streamed a fifth of the texts with each first and kept the "
        'fastest ("variant trials" column). Caveat: the synthetic texts recombine the corpora\'s '
        "sentences, so every word recurs and the word/chunk caches of sse_np and static-embed-runner "
        "(kept for the whole stream, as in a real job) hit almost always; on 1M distinct real texts "
        "they would hit less.",
        "",
    ]
    base = bulk.get(BASE, {})
    rows = []
    for name, r in bulk.items():
        if "error" in r:
            rows.append([_label(results, name), f"failed: {r['error'][:120]}"])
            continue
        trials = "; ".join(
            f"{', '.join(f'{k}={v}' for k, v in json.loads(t).items())}: {num(x)}/s"
            for t, x in r.get("variant_trials", {}).items()
        )
        rows.append(
            [
                _label(results, name),
                f"{r['n_texts']:,}",
                num(r["texts_per_s"]),
                spread(r["chunk_rates"]),
                num(r["encode_s"]),
                num(r["rss_after_load_mib"]),
                num(r["peak_rss_mib"]),
                str(r["batch"]),
                trials or "–",
                "" if name == BASE else ratio(base.get("texts_per_s"), r["texts_per_s"], True),
            ]
        )
    rows += [[_label(results, n), "not installed"] for n in _not_installed(results)]
    out.append(
        _table(
            [
                "engine",
                "texts",
                "texts/s",
                "chunk rates",
                "encode s",
                "RSS after load + 1st call",
                "peak RSS",
                "batch",
                "variant trials",
                "×",
            ],
            rows,
        )
    )
    return "\n".join(out)


def _workers(results: dict[str, Any]) -> str:
    workers = results.get("workers", {})
    if not workers:
        return ""
    first = next((v for v in workers.values() if "processes" in v), {})
    n = _get(first, "summary", "n") or results["meta"]["config"].get("workers", 4)
    n_texts = _get(first, "processes")[0]["n_texts"] if first else "?"
    out = [
        f"## 8. {n} concurrent workers (RSS and PSS, MiB)",
        "",
        f"{n} processes of each engine run at once (as a server's workers would), each loads the model, "
        f"encodes the same {n_texts} documents of the documents sample at the native dim (batches of its "
        f"chosen documents batch size) and then, once all {n} are loaded, "
        "reads its own `/proc/self/smaps_rollup`. RSS counts every resident page a process maps, so pages "
        "that several processes share are counted once per process; PSS divides each page among the "
        "processes that map it, so the PSS sum is the honest total memory of the group. A table "
        "memory-mapped from its file is one copy for the whole group (its pages show as shared); a table "
        'read or copied into each process\' memory is private, once per process. "weight file" = the '
        f"mapping of `model.safetensors` in `/proc/self/smaps`: its size, resident part (one process) and "
        f"PSS summed over the {n} (≈ the resident part when the group shares one copy; the kernel's "
        "page accounting can put it a little above that for a moment). "
        "N× = this row's PSS sum ÷ sse_np's (full layout).",
        "",
    ]
    base = _get(workers, f"{BASE}|full", "summary", "pss_sum_mib")
    rows = []
    for key, r in workers.items():
        _, _, label, failed = _layout_row(results, key, r)
        if failed:
            rows.append(failed)
            continue
        w = r["summary"]
        mapped = (
            f"{num(w['weight_file_size_mib'])} / {num(w['weight_file_rss_mib'])} / {num(w['weight_file_pss_sum_mib'])}"
            if w["weight_file_mapped"]
            else "not mapped"
        )
        rows.append(
            [
                label,
                num(w["rss_sum_mib"]),
                num(w["pss_sum_mib"]),
                num(w["private_per_process_mib"]),
                num(w["shared_per_process_mib"]),
                mapped,
                "" if key == f"{BASE}|full" else ratio(base, w["pss_sum_mib"], False),
            ]
        )
    rows += [[_label(results, n_), "not installed"] for n_ in _not_installed(results)]
    out.append(
        _table(
            [
                "engine, layout",
                f"RSS sum of {n}",
                f"PSS sum of {n} (total)",
                "private per process",
                "shared per process",
                "weight file: size / resident / PSS sum",
                "×",
            ],
            rows,
        )
    )
    return "\n".join(out)


# ----------------------------------------------------------------- targets
ISSUE = 6
PEER_TORCH, PEER_SER = "torch_ref", "static_embed_runner"


def _target_threads(speed: dict[str, Any]) -> str | None:
    """The thread setting the targets are judged at: 2, else the largest measured."""
    if "2" in speed:
        return "2"
    return max(speed, key=int) if speed else None


def _target_row(
    results: dict[str, Any],
    what: str,
    peer: str,
    get: Callable[[Any], float | None],
    block: dict[str, Any],
    need: float,
    higher_better: bool,
) -> list[str]:
    """One target: sse_np's figure, the peer's, the measured advantage and pass/miss.

    The advantage is sse_np / peer for throughput (higher better) and
    peer / sse_np for times, so every target reads "advantage ≥ need".
    """
    mine, theirs = get(block.get(BASE)), get(block.get(peer))
    row = [what, num(mine), f"{_label(results, peer)}: {num(theirs)}"]
    if not results.get("engines", {}).get(peer, {}).get("installed", False):
        return [*row, "–", f"≥ {need:g}×", "not measured (peer not installed)"]
    if not mine or not theirs:
        return [*row, "–", f"≥ {need:g}×", "not measured"]
    adv = mine / theirs if higher_better else theirs / mine
    ok = adv >= need if need != 1 else adv > 1
    return [*row, f"{adv:.2f}×", f"{'>' if need == 1 else '≥'} {need:g}×", "**pass**" if ok else "**miss**"]


def _targets(results: dict[str, Any]) -> str:
    """The issue's targets, judged from this run's medians."""
    speed = results.get("speed", {})
    t = _target_threads(speed)
    rows = []
    if t is not None:
        block = speed[t]
        qps = lambda r: _med(r, "throughput", "queries", "256")  # noqa: E731
        dps = lambda r: _med(r, "throughput", "docs", "512")  # noqa: E731
        p50 = lambda r: _med(r, "latency", "queries", "p50_us")  # noqa: E731
        qb = results["meta"]["config"]["query_batch"]
        rows += [
            _target_row(
                results, f"short queries texts/s, batch {qb}, dim 256, {t} thr", PEER_TORCH, qps, block, 3, True
            ),
            _target_row(results, f"short queries texts/s, batch {qb}, dim 256, {t} thr", PEER_SER, qps, block, 2, True),
            _target_row(results, f"long documents texts/s, dim 512, {t} thr", PEER_TORCH, dps, block, 3, True),
            _target_row(
                results,
                f"single-query latency p50 µs, dim 256, {t} thr (≤ 0.5× = ≥ 2× advantage)",
                PEER_TORCH,
                p50,
                block,
                2,
                False,
            ),
            _target_row(
                results, f"single-query latency p50 µs, dim 256, {t} thr (below it)", PEER_SER, p50, block, 1, False
            ),
        ]
    rows += _memory_target(results)
    if not rows:
        return ""
    out = [
        f"## Targets (issue {ISSUE})",
        "",
        "Judged from this run's medians. Advantage = sse_np ÷ peer for texts/s, peer ÷ sse_np "
        'for latency (so "≤ 0.5× the latency" is "≥ 2× advantage").',
        "",
        _table(["target", "sse_np", "peer", "advantage", "needed", "result"], rows),
    ]
    cold = _cold_targets(results)
    if cold:
        out += [
            "",
            "## Targets (issue 7: cold start, fresh process → first vector)",
            "",
            "Absolute limits on this machine (median import → first vector, seconds), next to the "
            "PyTorch reference's in the same run.",
            "",
            _table(["configuration", "seconds", "needed", "result", f"{_label(results, PEER_TORCH)}"], cold),
        ]
    return "\n".join(out)


def _cold_targets(results: dict[str, Any]) -> list[list[str]]:
    cs = results.get("coldstart", {})

    def median(key: str) -> float | None:
        vals = sorted(r["import_to_first_vector_s"] for r in cs.get(key, {}).get("runs", []) if "error" not in r)
        return vals[len(vals) // 2] if vals else None

    torch_s = median(PEER_TORCH)
    rows = []
    for key, what, need in [
        (f"{BASE}|warm", "sse_np, default backend, warm numba cache", 0.5),
        (f"{BASE}|numba", "sse_np, backend=numba (numba loaded first), warm numba cache", 0.5),
        ("sse_np_numpy", "sse_np, pure-NumPy path (slim install)", 0.3),
    ]:
        v = median(key)
        if key not in cs:
            continue
        rows.append(
            [
                what,
                num(v),
                f"≤ {need:g}",
                "not measured" if v is None else "**pass**" if v <= need else "**miss**",
                num(torch_s),
            ]
        )
    return rows


def _memory_target(results: dict[str, Any]) -> list[list[str]]:
    """The zero-copy target: the table's file mapping is one copy shared by the workers."""
    workers = results.get("workers", {})
    key = next((k for k in (f"{BASE}|shipped", f"{BASE}|full") if k in workers), None)
    if key is None:
        return []
    layout = _LAYOUTS.get(key.partition("|")[2])
    w = workers[key].get("summary")
    what = f"{_get(w, 'n') or '?'} workers share one memory-mapped table ({layout})"
    if not w:
        return [[what, "failed", "", "", "", "**miss**"]]
    torch_pss = _get(workers, f"{PEER_TORCH}|full", "summary", "pss_sum_mib")
    peer = f"{_label(results, PEER_TORCH)} (full): total PSS {num(torch_pss)} MiB" if torch_pss else "–"
    if not w["weight_file_mapped"]:
        return [
            [
                what,
                f"total PSS {num(w['pss_sum_mib'])} MiB; table not mapped",
                peer,
                "–",
                "mapped, PSS sum ≈ one copy",
                "**miss**",
            ]
        ]
    copies = w["weight_file_pss_sum_mib"] / w["weight_file_rss_mib"] if w["weight_file_rss_mib"] else float("nan")
    private = w.get("weight_file_private_sum_mib") or 0.0
    return [
        [
            what,
            f"total PSS {num(w['pss_sum_mib'])} MiB; file resident {num(w['weight_file_rss_mib'])} MiB, "
            f"PSS sum {num(w['weight_file_pss_sum_mib'])} MiB, private {num(private)} MiB",
            peer,
            f"{copies:.2f} copies",
            "mapped in every worker, no private page of it",
            "**pass**" if private <= 0.005 * w["weight_file_rss_mib"] else "**miss**",
        ]
    ]


def _glance(results: dict[str, Any]) -> str:
    """One line per workload: sse_np's figure and its ratio against each peer."""
    engines = [n for n, e in results.get("engines", {}).items() if n != BASE]
    speed = results.get("speed", {})
    threads = list(speed)
    lines: list[tuple[str, Callable[[Any], float | None], Any, bool]] = []
    for t in threads:
        lines.append(
            (f"queries texts/s, dim 256, {t} thr", lambda r: _med(r, "throughput", "queries", "256"), speed[t], True)
        )
        lines.append(
            (f"documents texts/s, dim 256, {t} thr", lambda r: _med(r, "throughput", "docs", "256"), speed[t], True)
        )
        lines.append(
            (f"documents texts/s, dim 512, {t} thr", lambda r: _med(r, "throughput", "docs", "512"), speed[t], True)
        )
    if threads:
        t0 = threads[0]
        for t in threads:
            lines.append(
                (f"query latency p50 µs, {t} thr", lambda r: _med(r, "latency", "queries", "p50_us"), speed[t], False)
            )
        lines.append(
            (f"query latency p99 µs, {t0} thr", lambda r: _med(r, "latency", "queries", "p99_us"), speed[t0], False)
        )
        for t in threads:
            lines.append(
                (
                    f"retrieval QPS (batch 32), dim 256, {t} thr",
                    lambda r: _med(r, "retrieval", "dims", "256", "batch32"),
                    speed[t],
                    True,
                )
            )
    cs = {}
    for key, entry in results.get("coldstart", {}).items():
        if key.endswith(("|numba", "|shipped")):
            continue  # the headline is the default configuration
        vals = sorted(r["import_to_first_vector_s"] for r in entry["runs"] if "error" not in r)
        cs[key.split("|")[0] if not key.endswith("|empty") else key] = {"v": vals[len(vals) // 2] if vals else None}
    if cs:
        lines.append(("cold start s (import → first vector)", lambda r: r.get("v"), cs, False))
    mem = {k.split("|")[0]: v for k, v in results.get("memory", {}).items() if k.endswith("|full")}
    if mem:
        lines.append(
            ("peak RSS MiB after encoding (full layout)", lambda r: r.get("peak_after_encode_mib"), mem, False)
        )
    workers = {
        k.split("|")[0]: v.get("summary", v) for k, v in results.get("workers", {}).items() if k.endswith("|full")
    }
    if workers:
        n = next((w["n"] for w in workers.values() if "n" in w), 4)
        lines.append((f"{n} workers: total PSS MiB (full layout)", lambda r: r.get("pss_sum_mib"), workers, False))
    fp = results.get("footprint", {}).get("sets", {})
    if fp:
        fpd = {s["engine"]: {"v": s["closure_mib"] if s["installed"] else None} for s in fp.values() if s.get("engine")}
        lines.append(("installed MiB (dependency closure)", lambda r: r.get("v"), fpd, False))
    bulk = results.get("bulk", {})
    if bulk:
        lines.append(("bulk texts/s (streamed)", lambda r: r.get("texts_per_s"), bulk, True))
    rows = []
    for title, get, block, hb in lines:
        b = get(block.get(BASE, {})) if isinstance(block.get(BASE), dict) else None
        row = [title, num(b)]
        for n in engines:
            r = block.get(n)
            if not results["engines"][n]["installed"]:
                row.append("not installed")
            elif not isinstance(r, dict) or "error" in r or get(r) is None:
                row.append("–")
            else:
                row.append(f"{num(get(r))} ({ratio(b, get(r), hb)})")
        rows.append(row)
    head = ["figure", "sse_np"] + [_label(results, n) for n in engines]
    return "\n".join(
        [
            "## At a glance",
            "",
            "Each peer cell: its figure (sse_np's advantage N×: > 1 = sse_np better). Details below.",
            "",
            _table(head, rows),
        ]
    )


def _failures(results: dict[str, Any]) -> str:
    errs = []
    for sec in ("speed", "memory", "bulk", "workers"):
        for k, v in results.get(sec, {}).items():
            items = v.items() if sec == "speed" else [(k, v)]
            for name, r in items:
                if isinstance(r, dict) and "error" in r:
                    errs.append(f"- {sec} {k if sec == 'speed' else ''} {name}: {r['error']}")
    for k, entry in results.get("coldstart", {}).items():
        errs += [f"- coldstart {k}: {r['error']}" for r in entry["runs"] if "error" in r]
    return "\n".join(["## Failures", "", *errs]) if errs else ""


def marked_sections(text: str) -> list[str]:
    """The ``<!-- NAME:begin -->`` ... ``<!-- NAME:end -->`` sections other benches wrote into RESULTS.md, in order.

    ``bench/run.py`` rewrites the file; these are kept after its own part.
    """
    return [m.group(0) for m in re.finditer(r"<!-- ([\w.-]+):begin -->.*?<!-- \1:end -->", text, re.S)]


def render(results: dict[str, Any]) -> str:
    """The whole RESULTS.md text."""
    meta = results["meta"]
    head = [
        "# sse_np benchmarks",
        "",
        f"Generated by `python bench/run.py{' --quick' if meta['quick'] else ''}` on {meta['started_utc']} "
        f"in {meta.get('duration_s', 0) / 60:.1f} min. Regenerate with the command in the README "
        "(`pip install -e . -r bench/requirements.txt && python bench/run.py`).",
    ]
    if meta["quick"]:
        head += ["", "**Quick (smoke) size: the inputs are tiny and these numbers mean nothing.**"]
    for run in meta.get("merged_runs", []):
        head += [
            "",
            f"Partly re-measured on {run['started_utc']} (`{' '.join(run['argv'])}`, load average "
            f"{run['load_average_start']} → {run['load_average_end']}); those rows replace the first run's.",
        ]
    head += [
        "",
        "Every speed figure is the median of repeated measurements with its [min–max] spread, "
        'next to the same figure for each peer measured in the same run; "N×" is sse_np\'s '
        "advantage over that row (> 1 = sse_np faster/smaller, < 1 = the row is).",
    ]
    parts = [
        "\n".join(head),
        _targets(results),
        _glance(results),
        _setup(results),
        _configuration(results),
        _throughput(results),
        _latency(results),
        _retrieval(results),
        _coldstart(results),
        _memory(results),
        _footprint(results),
        _bulk(results),
        _workers(results),
        _failures(results),
    ]
    return "\n\n".join(p for p in parts if p) + "\n"


# ------------------------------------------------------------------- chart
def chart(results: dict[str, Any], path: Path) -> bool:
    """Write a 2×3 PNG summary; False (and no file) when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    speed = results.get("speed", {})
    names = [n for n, e in results.get("engines", {}).items() if e.get("installed")]
    labels = [textwrap.fill(_label(results, n), 14) for n in names]
    fig, axes = plt.subplots(2, 3, figsize=(18, 10))

    def bars(ax: Any, series: dict[str, list[float | None]], title: str, ylabel: str, log: bool = True) -> None:
        width = 0.8 / max(1, len(series))
        for i, (lab, vals) in enumerate(series.items()):
            xs = [j + i * width for j in range(len(names))]
            ax.bar(xs, [v or 0 for v in vals], width, label=lab)
        ax.set_xticks([j + width * (len(series) - 1) / 2 for j in range(len(names))])
        ax.set_xticklabels(labels, fontsize=7)
        ax.set_title(title, fontsize=10)
        ax.set_ylabel(ylabel)
        if log:
            ax.set_yscale("log")
        ax.legend(fontsize=7)
        ax.grid(axis="y", alpha=0.3)

    for ax, wl, title in (
        (axes[0, 0], "queries", "Short queries (batch 32), dim 256"),
        (axes[0, 1], "docs", "Long documents, dim 256"),
    ):
        bars(
            ax,
            {f"{t} thread(s)": [_med(speed[t].get(n), "throughput", wl, "256") for n in names] for t in speed},
            title,
            "texts/s (higher is better)",
        )
    t0 = next(iter(speed), None)
    if t0:
        bars(
            axes[0, 2],
            {p: [_med(speed[t0].get(n), "latency", "queries", f"{p}_us") for n in names] for p in ("p50", "p99")},
            f"Single-query latency, {t0} thread(s)",
            "µs (lower is better)",
        )
        tl = list(speed)[-1]
        dims = [str(d) for d in results["meta"]["config"]["dims_retrieval"]]
        bars(
            axes[1, 0],
            {f"dim {d}": [_med(speed[tl].get(n), "retrieval", "dims", d, "batch32") for n in names] for d in dims},
            f"Retrieval QPS (encode + top-10, batch 32), {tl} thread(s)",
            "queries/s (higher is better)",
        )
    cs = results.get("coldstart", {})
    cold = []
    for n in names:
        runs = (cs.get(f"{n}|warm") or cs.get(n) or {}).get("runs", [])
        vals = sorted(r["import_to_first_vector_s"] for r in runs if "error" not in r)
        cold.append(vals[len(vals) // 2] if vals else None)
    bars(axes[1, 1], {"import → first vector": cold}, "Cold start (warm numba cache)", "s (lower is better)", log=False)
    mem = results.get("memory", {})
    bars(
        axes[1, 2],
        {
            "after load": [_get(mem, f"{n}|full", "peak_after_load_mib") for n in names],
            "after encoding": [_get(mem, f"{n}|full", "peak_after_encode_mib") for n in names],
        },
        "Peak RSS (full layout)",
        "MiB (lower is better)",
        log=False,
    )
    m = results["meta"]["machine"]
    fig.suptitle(
        f"sse_np vs peers — {m['cpu']}, {m['logical_cores']} cores — {results['meta']['started_utc']}"
        + (" — QUICK (meaningless)" if results["meta"]["quick"] else "")
    )
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True
