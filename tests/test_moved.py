"""The old module paths and root names still import for one release, with a DeprecationWarning each."""

from __future__ import annotations

import subprocess
import sys

# old module -> names it held before the layout change, and where each lives now
OLD = {
    "sse_np.api": {
        "encode": "sse_np.defaults",
        "default_model": "sse_np.defaults",
        "similarity": "sse_np.retrieval.similarity",
    },
    "sse_np.loading": {
        "read_checkpoint": "sse_np.checkpoint.read",
        "Table": "sse_np.checkpoint.read",
        "FULL_FILE": "sse_np.checkpoint.layout",
        "Q4_LEVELS": "sse_np.checkpoint.q4",
    },
    "sse_np.quantize": {"quantize_q4": "sse_np.checkpoint.q4"},
    "sse_np.convert": {"save_q4": "sse_np.checkpoint.write"},
    "sse_np.hub": {"download": "sse_np.checkpoint.hub"},
    "sse_np.search": {
        "semantic_search": "sse_np.retrieval.search",
        "top_k": "sse_np.retrieval.topk",
        "hamming_top_k": "sse_np.retrieval.hamming",
    },
    "sse_np.quantization": {"quantize_embeddings": "sse_np.retrieval.quantization"},
    "sse_np.streams": {
        "read_chunks": "sse_np.bulk.readers",
        "AtomicOutput": "sse_np.bulk.writers",
        "json_line": "sse_np.jsonl",
    },
    "sse_np.parquet": {"ParquetWriter": "sse_np.bulk.parquet"},
    "sse_np.ray_data": {"embed_dataset": "sse_np.bulk.ray"},
    "sse_np._search_numba": {"hamming_top_k_scan": "sse_np.retrieval.kernels"},
}

CHECK = """
import importlib, sys, warnings
old, names = sys.argv[1], dict(arg.split("=") for arg in sys.argv[2:])
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    module = __import__(old, fromlist=["_"])  # an import statement, as user code writes it
moved = [w for w in caught if issubclass(w.category, DeprecationWarning) and old in str(w.message)]
assert len(moved) == 1 and moved[0].filename == __file__, [(str(w.message), w.filename) for w in caught]
for name, new in names.items():
    assert getattr(module, name) is getattr(importlib.import_module(new), name), name
print("ok")
"""


def test_old_module_paths_import_with_a_warning(tmp_path) -> None:
    script = tmp_path / "check_moved.py"
    script.write_text(CHECK, encoding="utf-8")
    for old, names in OLD.items():
        done = subprocess.run(
            [sys.executable, str(script), old, *(f"{k}={v}" for k, v in names.items())],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0 and done.stdout.strip() == "ok", (old, done.stderr[-2000:])


def test_root_names_that_moved_to_eval_warn() -> None:
    code = (
        "import warnings, sse_np, sse_np.eval\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    assert sse_np.evaluate is sse_np.eval.evaluate and sse_np.load_beir is sse_np.eval.load_beir\n"
        "assert [str(w.message).split(' ')[0] for w in caught] == ['sse_np.evaluate', 'sse_np.load_beir'], caught\n"
        "assert all(w.category is DeprecationWarning for w in caught)\n"
        "try:\n    sse_np.no_such_name\nexcept AttributeError as exc:\n    print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "module 'sse_np' has no attribute 'no_such_name'"
