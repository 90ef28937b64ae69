"""``sse-np info/encode/eval`` on a model2vec model and a sentence-transformers StaticEmbedding model."""

from __future__ import annotations

import json

import numpy as np
import pytest

import sse_np
from helpers import static_models as sm
from sse_np.cli import main

pytest.importorskip("model2vec", reason="building the model2vec model needs model2vec (the test extra)")
pytest.importorskip("sentence_transformers", reason="building the StaticEmbedding model needs sentence-transformers")


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("formats_cli")
    return {
        "model2vec": sm.minilm_model2vec(root / "potion", "weighted", normalize=False),
        "sentence-transformers": sm.st_static(root / "st", "unigram", normalize=True, truncate_dim=16)[0],
    }


@pytest.mark.parametrize("fmt", ["model2vec", "sentence-transformers"])
def test_info_names_the_format_and_its_defaults(folders, fmt, capsys):
    assert main(["info", "--model", str(folders[fmt]), "--json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["format"] == fmt
    if fmt == "model2vec":
        assert facts["defaults"]["max_length"] == 512 and facts["defaults"]["token weights"] is True
        assert facts["tokenizer"]["numba fast path"] == "supported"  # MiniLM's BERT WordPiece
    else:
        assert facts["defaults"]["truncate_dim"] == 16 and facts["defaults"]["normalize"] is True
        assert facts["tokenizer"]["numba fast path"] == "supported (word path, ASCII texts)"  # BPE, Whitespace


@pytest.mark.parametrize("fmt", ["model2vec", "sentence-transformers"])
def test_encode_writes_what_the_library_returns(folders, fmt, tmp_path):
    texts = ["a cat sat on the mat", "", "fast static embedding search", "café 日本"]
    src = tmp_path / "texts.txt"
    src.write_text("\n".join(texts) + "\n", encoding="utf-8")
    out = tmp_path / "v.npy"
    assert main(["encode", str(src), "-o", str(out), "--model", str(folders[fmt])]) == 0
    if fmt == "model2vec":
        from model2vec import StaticModel

        want = StaticModel.from_pretrained(folders[fmt]).encode(texts)
    else:
        import sentence_transformers as st

        want = st.SentenceTransformer(str(folders[fmt]), device="cpu").encode(texts)
    np.testing.assert_allclose(np.load(out), want, atol=1e-6)
    short = tmp_path / "short.npy"
    assert main(["encode", str(src), "-o", str(short), "--model", str(folders[fmt]), "--max-length", "2"]) == 0
    np.testing.assert_allclose(np.load(short), sse_np.load(folders[fmt]).encode(texts, max_length=2), atol=1e-6)


def test_eval_runs_on_both_formats(folders, tmp_path, capsys):
    data = tmp_path / "tiny"
    (data / "qrels").mkdir(parents=True)
    corpus = [("d1", "cats purr and sleep all day"), ("d2", "dogs bark at the mail carrier"), ("d3", "apple pie")]
    (data / "corpus.jsonl").write_text("".join(json.dumps({"_id": i, "text": t}) + "\n" for i, t in corpus))
    (data / "queries.jsonl").write_text(json.dumps({"_id": "q1", "text": "cats"}) + "\n")
    (data / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    for folder in folders.values():
        assert main(["eval", str(data), "--model", str(folder), "--dims", "8"]) == 0
        assert "ndcg" in capsys.readouterr().out.lower()
