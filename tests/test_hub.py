"""Hub downloads, against a fake hub on 127.0.0.1 (no real network)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

import sse_np
from conftest import make_full, random_weights


@pytest.fixture
def fake_hub(tmp_path, tokenizer_json):
    """Serves one repository, owner/sse-tiny, in the hub's URL scheme; records requests."""
    repo = make_full(tmp_path / "repo", tokenizer_json, random_weights(30522, 16, seed=9))
    (repo / "modules.json").write_text(json.dumps([{"idx": 0, "name": "0", "path": "", "type": "sse.SSE"}]))
    (repo / "README.md").write_text("not downloaded")
    (repo / "pytorch_model.bin").write_bytes(b"not downloaded either")
    requests: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            requests.append(self.path)
            if self.path == "/api/models/owner/sse-tiny/revision/main":
                body = json.dumps({"siblings": [{"rfilename": p.name} for p in repo.iterdir()]}).encode()
            elif self.path.startswith("/owner/sse-tiny/resolve/main/") and (repo / self.path.rsplit("/", 1)[1]).is_file():
                body = (repo / self.path.rsplit("/", 1)[1]).read_bytes()
            else:
                self.send_response(404)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", repo, requests
    server.shutdown()


def test_download_fetches_only_model_files_then_uses_cache(fake_hub, tmp_path, monkeypatch):
    endpoint, repo, requests = fake_hub
    cache = tmp_path / "cache"
    path = sse_np.download("owner/sse-tiny", cache_dir=cache, endpoint=endpoint)
    assert sorted(p.name for p in path.iterdir() if not p.name.startswith(".")) == [
        "model.safetensors", "modules.json", "tokenizer.json"]
    np.testing.assert_array_equal(sse_np.load(path).encode(["hub"]), sse_np.load(repo).encode(["hub"]))
    n = len(requests)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert sse_np.download("owner/sse-tiny", cache_dir=cache, endpoint=endpoint) == path
    assert len(requests) == n  # served from the cache


def test_load_by_repo_id_uses_hf_endpoint(fake_hub, tmp_path, monkeypatch):
    endpoint, repo, _ = fake_hub
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    monkeypatch.setenv("SSE_NP_CACHE", str(tmp_path / "c"))
    monkeypatch.chdir(tmp_path)
    model = sse_np.load("owner/sse-tiny")
    assert model.dim == 16 and Path(model.path).is_relative_to(tmp_path / "c")


def test_unknown_repository_is_a_clear_error(fake_hub, tmp_path):
    endpoint, _, _ = fake_hub
    with pytest.raises(sse_np.ModelNotFoundError, match="HTTP 404"):
        sse_np.download("owner/absent", cache_dir=tmp_path, endpoint=endpoint)
    assert not any(p.name.startswith("owner--absent") for p in tmp_path.iterdir())


def test_offline_without_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(sse_np.ModelNotFoundError, match="HF_HUB_OFFLINE"):
        sse_np.download("owner/anything", cache_dir=tmp_path, endpoint="http://127.0.0.1:9")


def test_unreachable_hub(tmp_path):
    with pytest.raises(sse_np.ModelNotFoundError, match="cannot reach the hub"):
        sse_np.download("owner/anything", cache_dir=tmp_path, endpoint="http://127.0.0.1:9")
