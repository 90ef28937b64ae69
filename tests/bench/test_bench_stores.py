"""bench/stores.py keeps running, and its sentence-transformers peer computes sse_np's vectors."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

import sse_np
from helpers.paths import REPO

if str(REPO) not in sys.path:  # bench/ is a folder of the repo, not an installed package
    sys.path.insert(0, str(REPO))


def test_peer_gives_the_same_vectors() -> None:
    from bench.stores import STEncoder, load_documents

    _, texts = load_documents(50)
    model = sse_np.default_model()
    peer = STEncoder(str(model.path), 256)
    theirs, ours = peer(texts), model.encode(texts, 256)
    assert theirs.shape == ours.shape == (50, 256)
    np.testing.assert_allclose(theirs, ours, rtol=0, atol=1e-6)


def test_every_store_is_ingested_by_every_feeder() -> None:
    cmd = [sys.executable, "bench/stores.py", "--docs", "60", "--batch", "25", "--repeat", "1", "--no-write"]
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = [
        line.split("|")[1].strip() for line in out.stdout.splitlines() if line.startswith("| ") and "---" not in line
    ]
    assert rows == ["store", "embed only", "chroma", "lancedb", "qdrant", "qdrant-bm25", "haystack"]
