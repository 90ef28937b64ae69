"""scripts/build_default_model.py: the pieces the default model's choices rest on.

Dev metric, dev split, epoch choice, ids.

The build itself needs hours of CPU and downloads; these tests check, on
small inputs, that the validation metric is right, that held-out records
never reach training, that the export takes the best dev epoch, and that
student ids map to each teacher's ids.
"""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from helpers.paths import REPO


@pytest.fixture(scope="module")
def build():
    spec = importlib.util.spec_from_file_location(
        "sse_np_build_default_model", REPO / "scripts" / "build_default_model.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_mrr_at_10_ranks_and_cutoff(build) -> None:
    docs = np.eye(12, dtype=np.float32)
    # query 0 is doc 0 itself (rank 1); query 1 prefers doc 5, then doc 1 (rank 2);
    # query 2 scores its doc 2 below 11 others (rank 12: beyond the cut-off, 0).
    queries = np.stack([docs[0], docs[5] + 0.5 * docs[1], np.ones(12, np.float32) - docs[2]])
    got = build.mrr_at_10(queries, docs, [0, 1, 2])
    assert got == pytest.approx((1.0 + 0.5 + 0.0) / 3)


def test_mrr_at_10_broken_vectors_rank_last(build) -> None:
    docs = np.eye(3, dtype=np.float32)
    docs[1] = np.nan  # a NaN document must not look like a perfect match
    queries = np.stack([docs[0], np.full(3, np.nan, np.float32)])
    assert build.mrr_at_10(queries[:1], docs, [0]) == 1.0
    assert build.mrr_at_10(queries[1:], docs, [2]) == 0.0
    assert build.mrr_at_10(queries[:1], docs, [1]) == 0.0  # the relevant doc is the broken one


def test_dev_split_is_seeded_and_disjoint(build) -> None:
    recs = [{"q": f"t{i}"} for i in range(100)]
    train, dev = build._split_dev(recs, 10, seed=1234)
    again_train, again_dev = build._split_dev(recs, 10, seed=1234)
    assert dev == again_dev and train == again_train
    assert len(dev) == 10 and len(train) == 90
    assert not {r["q"] for r in dev} & {r["q"] for r in train}
    assert build._split_dev(recs, 10, seed=1)[1] != dev


def test_export_takes_the_best_dev_epoch(build, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(build, "WORK", tmp_path)
    teacher = build.Teacher("minilm")
    history = [{"mean@256": 0.5}, {"mean@256": 0.7}, {"mean@256": 0.9}, {"mean@256": 0.8}]
    (teacher.work / "trial_dev.json").write_text(json.dumps(history))
    assert build.best_checkpoint(teacher, "trial") == tmp_path / "minilm" / "trial_e2.pt"
    with pytest.raises(SystemExit, match="run --stage train first"):
        build.best_checkpoint(teacher, "missing")


def test_teacher_ids(build) -> None:
    minilm, mpnet = build.Teacher("minilm"), build.Teacher("mpnet")
    assert minilm.ids([2023, 2003]) == [101, 2023, 2003, 102]  # [CLS] ... [SEP]
    assert mpnet.ids([2023, 2003]) == [0, 2027, 2007, 2]  # <s> ids+4 </s>
    assert len(mpnet.ids(list(range(1000, 2000)))) == 384  # its max_seq_length, specials included
    assert len(minilm.ids(list(range(1000, 2000)))) == 256
    with pytest.raises(SystemExit, match="unknown teacher"):
        build.Teacher("bert")
