"""``sse-np bench`` in-process: every workload and the machine in the JSON, --compare, --data readers.

Real runs on a small random model with a tiny ``--duration``; the tests check
structure and consistency, never timings (no wall-clock thresholds).
"""

from __future__ import annotations

import copy
import gzip
import json
import sys
from pathlib import Path

import pytest

from helpers.cli import without_compile_notice
from helpers.models import make_random_model
from sse_np.bench import texts, workloads
from sse_np.bench.report import compare, figures
from sse_np.cli import main
from sse_np.engine import parallel

FAST = ["--duration", "0.6", "--repeats", "2", "--backend", "numpy"]
SUMMARY = {"median", "min", "max", "n", "runs"}


@pytest.fixture(scope="module")
def small_model(tmp_path_factory) -> Path:
    return make_random_model(tmp_path_factory.mktemp("bench") / "m", dim=32, seed=11)


@pytest.fixture(scope="module")
def first_run(small_model, tmp_path_factory) -> tuple[dict, str]:
    """One real run with --json: (the JSON, what was printed)."""
    out = tmp_path_factory.mktemp("bench_out") / "run.json"
    capture = pytest.MonkeyPatch()
    import io

    buf = io.StringIO()
    capture.setattr(sys, "stdout", buf)
    try:
        assert main(["bench", "--model", str(small_model), *FAST, "--json", str(out)]) == 0
    finally:
        capture.undo()
    return json.loads(out.read_text()), buf.getvalue()


def _is_summary(s: dict, runs: int = 2) -> bool:
    return set(s) >= SUMMARY and s["n"] == runs and s["min"] <= s["median"] <= s["max"] and len(s["runs"]) == runs


def test_json_holds_every_workload(first_run) -> None:
    res, _ = first_run
    w = res["workloads"]
    assert res["schema"] == "sse_np.bench/1"
    assert all(_is_summary(w["latency"][f"p{q}_us"]) for q in ("50", "90", "99", "99.9"))
    lat = w["latency"]
    assert all(a <= b for a, b in zip(lat["p50_us"]["runs"], lat["p99.9_us"]["runs"]))  # per round, p50 <= p99.9
    assert sorted(w["calls"], key=int) == ["1", "32", "1024"] and all(map(_is_summary, w["calls"].values()))
    assert _is_summary(w["documents"]) and w["documents"]["texts"] >= 900 and w["documents"]["MB"] > 0
    assert [r["threads"] for r in w["threads"]] == workloads.thread_counts(parallel.cores())
    for row in w["threads"]:
        assert _is_summary(row["documents_per_s"]) and _is_summary(row["short_per_s"])
        if workloads.fork_available():
            assert row["ratio_documents"] == pytest.approx(
                row["documents_per_s"]["median"] / row["ceiling_documents_per_s"]["median"]
            )
            assert "ratio_short" in row and row["ceiling_short_per_s"]["n"] == 3
    assert [c["callers"] for c in w["callers"]] == workloads.caller_counts(parallel.cores())
    assert all(_is_summary(c["texts_per_s"]) for c in w["callers"])
    mem = w["memory"]
    assert mem["table_MiB"] == pytest.approx(30522 * 32 * 4 / 2**20, abs=0.05)
    if sys.platform == "linux":
        assert mem["peak_rss_MiB"] > 0 and mem["rss_after_load_MiB"] > 0


def test_json_names_the_machine_and_model(first_run, small_model) -> None:
    res, printed = first_run
    m = res["machine"]
    for key in ("cpu", "cores_usable", "caches", "os", "python", "numpy", "numba", "numba_threading_layer"):
        assert key in m
    assert m["tokenizers"] and m["cores_usable"] == parallel.cores()
    if sys.platform == "linux" and Path("/sys/devices/system/cpu/cpu0/cache").is_dir():
        assert any(k.startswith("L1") for k in m["caches"])
    model = res["model"]
    assert model["backend"] == "numpy" and model["dim"] == 32 and model["storage"] == "memory-mapped file"
    assert len(model["fingerprint"]) == 16 and Path(model["path"]) == small_model
    assert res["texts"]["source"].startswith("built-in sample") and "PSF" in res["texts"]["licence"]
    for heading in ("single-text latency", "threads sweep", "concurrent callers", "back-end  numpy", "memory"):
        assert heading in printed


def test_fingerprint_tells_models_apart(small_model, tmp_path) -> None:
    import sse_np
    from sse_np.bench.machine import fingerprint

    same = sse_np.load(small_model, backend="numpy")
    other = sse_np.load(make_random_model(tmp_path / "o", dim=32, seed=12), backend="numpy")
    assert fingerprint(same) == fingerprint(sse_np.load(small_model, backend="numpy")) != fingerprint(other)


def _scaled(res: dict, name: str, factor: float) -> dict:
    """A copy of ``res`` with the runs of figure ``name`` multiplied by ``factor``."""
    new = copy.deepcopy(res)
    for label, s, _ in figures(new):
        if label == name:
            for key in ("median", "min", "max"):
                s[key] *= factor
            return new
    raise KeyError(name)


def test_compare_flags_changes_beyond_the_spread(first_run) -> None:
    res, _ = first_run
    same = compare(res, res)
    assert same["rows"] and not any(r["flag"] for r in same["rows"]) and not same["notes"]
    assert all(r["ratio"] == 1.0 for r in same["rows"])
    faster = compare(res, _scaled(res, "calls of 32/s", 3.0))
    flagged = {r["figure"]: r["flag"] for r in faster["rows"] if r["flag"]}
    assert flagged == {"calls of 32/s": "better"}
    slower = compare(res, _scaled(_scaled(res, "latency p99 µs", 3.0), "documents in one call/s", 0.25))
    flagged = {r["figure"]: r["flag"] for r in slower["rows"] if r["flag"]}
    assert flagged == {"latency p99 µs": "worse", "documents in one call/s": "worse"}
    # a change inside the measured spread is not flagged
    s = next(s for label, s, _ in figures(res) if label == "calls of 1024/s")
    inside = (s["min"] + (s["max"] - s["min"]) / 4) / s["median"] if s["max"] > s["min"] else 1.0
    assert not any(r["flag"] for r in compare(res, _scaled(res, "calls of 1024/s", inside))["rows"])
    other = copy.deepcopy(res)
    other["model"]["fingerprint"] = "0" * 16
    assert compare(res, other)["notes"] == [f"model fingerprint differs: {res['model']['fingerprint']} -> {'0' * 16}"]


def test_compare_on_the_command_line(first_run, small_model, tmp_path, capsys) -> None:
    res, _ = first_run
    old = tmp_path / "old.json"
    old.write_text(json.dumps(_scaled(res, "calls of 32/s", 1e6)))  # a past run a million times faster
    data, new = _lines(tmp_path), tmp_path / "new.json"
    args = ["bench", "--model", str(small_model), "--data", str(data), "--dim", "16", *FAST, "--compare", str(old)]
    assert main([*args, "--threads", "1", "--json", str(new)]) == 0
    out = capsys.readouterr().out
    res = json.loads(new.read_text())
    settings = res["settings"]
    assert res["dim"] == settings["dim"] == 16 and settings["data"] == str(data)
    assert res["model"]["threads"] == settings["threads"] == 1  # the model the workloads ran on
    assert "back-end  numpy; threads 1" in out
    assert "compared with the earlier run" in out
    line = next(line for line in out.splitlines() if line.startswith("calls of 32/s"))
    assert line.rstrip().endswith("WORSE")
    assert main(["bench", "--model", str(small_model), "--json", str(tmp_path / "no" / "out.json")]) == 1
    assert "its folder does not exist" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text('{"rows": []}')
    assert main(["bench", "--model", str(small_model), "--compare", str(bad)]) == 1
    assert "not an `sse-np bench --json` file" in capsys.readouterr().err


# ------------------------------------------------------------------ texts
def _lines(tmp_path: Path) -> Path:
    path = tmp_path / "texts.txt"
    path.write_text("first text\n\nsecond text, a little longer\nthird\n", encoding="utf-8")
    return path


def test_builtin_sample_is_shipped_and_real() -> None:
    sample = texts.builtin()
    assert len(sample.short) == 4000 and len(sample.documents) == 900
    assert len(set(sample.short)) == 4000 and len(set(sample.documents)) == 900
    assert all(15 <= len(t) <= 120 for t in sample.short) and all(200 <= len(t) <= 2000 for t in sample.documents)
    assert "PSF License" in sample.licence


def test_a_large_file_is_cut_to_its_first_texts(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(texts, "MAX_DATA_BYTES", 25)
    path = tmp_path / "big.txt"
    path.write_text("".join(f"text number {i}\n" for i in range(10)), encoding="utf-8")  # 14-15 bytes each
    loaded = texts.load(str(path))
    assert loaded.short == ["text number 0", "text number 1"] and loaded.documents == loaded.short
    assert loaded.source == f"{path} (the first 2 of its 10 texts)"
    monkeypatch.setattr(texts, "MAX_DATA_BYTES", 10_000)
    assert texts.load(str(path)).source == str(path)


def test_data_files_lines_jsonl_gz(tmp_path) -> None:
    assert texts.load(str(_lines(tmp_path))).short == ["first text", "second text, a little longer", "third"]
    jl = tmp_path / "d.jsonl.gz"
    rows = [{"text": "a b"}, {"title": "T", "text": "body"}, {"title": "", "text": "c"}]
    jl.write_bytes(gzip.compress("\n".join(json.dumps(r) for r in rows).encode()))
    loaded = texts.load(str(jl))
    assert loaded.short == loaded.documents == ["a b", "T body", "c"]


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ('{"text": "ok"}\n{"text": 3}\n', "d.jsonl:2: no string 'text' field"),
        ('{"text": "ok"}\n{"text": \n', "d.jsonl:2: invalid JSON"),
        ("[1]\n", "d.jsonl:1: expected a JSON object"),
        ("\n\n", "d.jsonl: no texts in the file"),
    ],
)
def test_bad_data_is_named(tmp_path, content, fragment) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=r"d\.jsonl") as err:
        texts.load(str(path))
    assert fragment in str(err.value)


def test_parquet_with_and_without_pyarrow(tmp_path, monkeypatch, capsys, small_model) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    import pyarrow as pa

    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"id": [1, 2], "text": ["x y", "z"]}), path)
    assert texts.load(str(path)).short == ["x y", "z"]
    pq.write_table(pa.table({"body": ["x"]}), tmp_path / "n.parquet")
    with pytest.raises(ValueError, match=r"n.parquet: no 'text' column \(columns: body\)"):
        texts.load(str(tmp_path / "n.parquet"))
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    assert main(["bench", "--model", str(small_model), "--data", str(path)]) == 1
    err = without_compile_notice(capsys.readouterr().err).strip()
    assert err.startswith("sse-np: error: reading t.parquet (Parquet) needs the 'parquet' extra: pip install -e")


def test_thread_and_caller_counts() -> None:
    assert workloads.thread_counts(1) == [1]
    assert workloads.thread_counts(2) == [1, 2]
    assert workloads.thread_counts(6) == [1, 2, 4, 6]
    assert workloads.thread_counts(16) == [1, 2, 4, 8, 16]
    assert workloads.caller_counts(2) == [1, 2, 4]
    assert workloads.caller_counts(16) == [1, 2, 4, 8, 16, 32]
