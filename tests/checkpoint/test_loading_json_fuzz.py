"""Every JSON file a model folder can hold, fuzzed value by value (issue 27 item 14): ``sse_np.load`` either
loads a model that encodes, or raises ``ModelLoadError`` -- never ``OverflowError``, ``TypeError``, ...

Each case replaces one value (every key and list item of ``modules.json`` and ``config*.json``, and of
``tokenizer.json`` outside its vocabulary) with a hostile one: huge or non-finite numbers, wrong types.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

import sse_np
from sse_np import ModelLoadError

V, D = 2100, 4
HOSTILE = [1e400, -1e400, float("nan"), 2**70, -1, 0, None, True, "", "x", [], {}, [1e400], {"idx": 1e400}]


@pytest.fixture(scope="module")
def small_tokenizer(tokenizer_json) -> dict:
    spec = json.loads(tokenizer_json.read_text(encoding="utf-8"))
    spec["model"]["vocab"] = {tok: i for tok, i in spec["model"]["vocab"].items() if i < V}
    spec["padding"] = spec["truncation"] = None
    return spec


@pytest.fixture(scope="module")
def st_model(tmp_path_factory, small_tokenizer) -> Path:
    """A sentence-transformers layout with every JSON file it can hold."""
    root = tmp_path_factory.mktemp("st_fuzz")
    module = root / "0_StaticEmbedding"
    module.mkdir()
    table = np.random.default_rng(0).standard_normal((V, D), dtype=np.float32)
    save_file({"embedding.weight": table}, str(module / "model.safetensors"))
    (root / "tokenizer.json").write_text(json.dumps(small_tokenizer))
    (root / "modules.json").write_text(
        json.dumps(
            [
                {
                    "idx": 0,
                    "name": "0",
                    "path": "0_StaticEmbedding",
                    "type": "sentence_transformers.models.StaticEmbedding",
                },
                {"idx": 1, "name": "1", "path": "1_Normalize", "type": "sentence_transformers.models.Normalize"},
            ]
        )
    )
    (root / "config_sentence_transformers.json").write_text(
        json.dumps({"__version__": {"sentence_transformers": "5.0.0"}, "prompts": {}, "similarity_fn_name": "cosine"})
    )
    (root / "config.json").write_text(json.dumps({"model_type": "static", "hidden_size": D}))
    return root


def _paths(value, prefix=(), depth=0) -> Iterator[tuple]:
    """Every key and list item (the first three of a list), depth first."""
    if depth > 4:
        return
    items = (
        list(value.items())
        if isinstance(value, dict)
        else list(enumerate(value[:3]))
        if isinstance(value, list)
        else []
    )
    for key, child in items:
        if prefix == ("model",) and key == "vocab":
            yield (*prefix, key)
            continue  # 2100 tokens: the vocabulary as a whole only
        yield (*prefix, key)
        yield from _paths(child, (*prefix, key), depth + 1)


def _replaced(spec, path: tuple, value):
    spec = json.loads(json.dumps(spec))
    node = spec
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return spec


def _cases(folder: Path) -> Iterator[tuple[str, tuple, object]]:
    for name in ("modules.json", "config.json", "config_sentence_transformers.json", "tokenizer.json"):
        spec = json.loads((folder / name).read_text())
        for path in _paths(spec):
            for value in HOSTILE:
                yield name, path, value


def _loads_or_refuses(folder: Path, what: str) -> str:
    try:
        model = sse_np.load(folder, backend="numpy")
    except ModelLoadError:
        return "refused"
    except Exception as exc:
        raise AssertionError(f"{what}: {type(exc).__name__}: {exc}") from None
    try:
        vectors = model.encode(["hello world", "the of and in", "日本 café", ""])
    except Exception as exc:
        raise AssertionError(f"{what}: loaded, then encode raised {type(exc).__name__}: {exc}") from None
    assert vectors.shape == (4, D), what
    return "loaded"


def test_fuzzed_json_loads_or_raises_model_load_error(tmp_path, st_model):
    folder = tmp_path / "m"
    shutil.copytree(st_model, folder)
    seen = {"loaded": 0, "refused": 0}
    failures = []
    for name, path, value in _cases(st_model):
        original = (st_model / name).read_text()
        spec = _replaced(json.loads(original), path, value)
        text = (
            json.dumps(spec, allow_nan=True)
            if not isinstance(value, float) or math.isfinite(value)
            else (json.dumps(spec).replace("Infinity", "1e400"))
        )
        (folder / name).write_text(text)
        try:
            seen[_loads_or_refuses(folder, f"{name} {list(path)} = {value!r}")] += 1
        except AssertionError as exc:
            failures.append(str(exc))
        finally:
            (folder / name).write_text(original)
    assert not failures, f"{len(failures)} cases:\n" + "\n".join(failures[:40])
    assert seen["loaded"] and seen["refused"]
