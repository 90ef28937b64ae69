"""``sse-np bench --peers``: a peer is timed only when its vectors are sse_np's (the real library, real vectors)."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

import sse_np
from helpers.models import make_random_model
from sse_np.bench import peers, texts
from sse_np.cli import main

FAST = ["--duration", "0.6", "--repeats", "2", "--backend", "numpy"]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("peers")
    return [make_random_model(root / name, dim=24, seed=seed) for name, seed in (("a", 5), ("b", 6))]


def test_sentence_transformers_matches_then_is_timed(models, tmp_path, capsys) -> None:
    pytest.importorskip("sentence_transformers")
    out = tmp_path / "p.json"
    args = ["bench", "--model", str(models[0]), *FAST, "--peers", "sentence-transformers", "--json", str(out)]
    assert main(args) == 0
    st = json.loads(out.read_text())["peers"]["sentence-transformers"]
    assert st["lowest_cosine"] >= peers.MIN_COSINE
    for work in st["workloads"].values():
        assert work["ratio"]["n"] == 2
        assert work["ratio"]["runs"] == pytest.approx(
            [a / b for a, b in zip(work["sse_np"]["runs"], work["peer"]["runs"])], rel=1e-4
        )
    assert "peers, same model and vectors, timed interleaved" in capsys.readouterr().out


def test_a_peer_with_other_vectors_is_refused(models, monkeypatch) -> None:
    pytest.importorskip("sentence_transformers")
    other = sse_np.load(models[1], backend="numpy")
    real = peers._encoder_st
    monkeypatch.setattr(peers, "_encoder_st", lambda model, dim: real(other, dim))  # the peer loads another model
    model = sse_np.load(models[0], backend="numpy")
    steps: list[str] = []
    got = peers.compare_peers(model, ["sentence-transformers"], texts.builtin(), 24, 0.1, 2, steps.append)
    assert got["sentence-transformers"]["refused"].startswith("its vectors differ from sse_np's (lowest cosine")
    assert "workloads" not in got["sentence-transformers"] and steps == ["sentence-transformers"]


def test_matching() -> None:
    a = np.array([[1.0, 0.0], [0.0, 0.0], [0.6, 0.8]], dtype=np.float32)
    assert peers.matching(a, a * 2) == pytest.approx(1.0)  # scale does not matter; zero rows agree
    assert peers.matching(a, a[[0, 1, 0]]) == pytest.approx(0.6)


def test_unknown_or_missing_peer_is_a_clear_error(models, capsys, monkeypatch) -> None:
    assert main(["bench", "--model", str(models[0]), *FAST, "--peers", "faiss"]) == 1
    assert "--peers: unknown peer 'faiss' (known: sentence-transformers, model2vec)" in capsys.readouterr().err
    monkeypatch.setattr(peers.importlib.util, "find_spec", partial(lambda name: None))
    assert main(["bench", "--model", str(models[0]), *FAST, "--peers", "model2vec"]) == 1
    assert "--peers model2vec needs the 'peers' extra: pip install -e '.[peers]'" in capsys.readouterr().err


def _static_model(folder: Path, tokenizer_json: Path) -> Path:
    """A sentence-transformers StaticEmbedding folder (no DyT), as on the hub."""
    module = folder / "0_StaticEmbedding"
    module.mkdir(parents=True)
    table = np.random.default_rng(3).standard_normal((30522, 24), dtype=np.float32)
    save_file({"embedding.weight": table}, str(module / "model.safetensors"))
    (module / "tokenizer.json").write_bytes(tokenizer_json.read_bytes())
    entry = {"idx": 0, "name": "0", "path": "0_StaticEmbedding", "type": "sentence_transformers.models.StaticEmbedding"}
    (folder / "modules.json").write_text(json.dumps([entry]))
    return folder


def test_model2vec_is_timed_on_a_static_model_and_refused_with_dyt(models, tmp_path, tokenizer_json) -> None:
    """model2vec has no DyT head: the same vectors on a StaticEmbedding model, other vectors on an SSE model."""
    pytest.importorskip("model2vec")
    sample = texts.builtin()
    static = sse_np.load(_static_model(tmp_path / "static", tokenizer_json), backend="numpy")
    assert static.dyt is None
    got = peers.compare_peers(static, ["model2vec"], sample, 24, 0.1, 2, lambda label: None)["model2vec"]
    assert got["lowest_cosine"] >= peers.MIN_COSINE and set(got["workloads"]) == {
        "documents, 900 in one call",
        "calls of 32",
    }
    sse = sse_np.load(models[0], backend="numpy")
    refused = peers.compare_peers(sse, ["model2vec"], sample, 24, 0.1, 2, lambda label: None)["model2vec"]
    assert refused["refused"].startswith("its vectors differ from sse_np's")
    assert refused["refused"].endswith("; model2vec has no DyT head, and this model has one")
