"""Hub downloads against a fake hub on 127.0.0.1 (tests/fake_hub.py); never the real network."""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

import sse_np
from helpers.fake_hub import FakeHub, read_folder
from helpers.models import make_full, random_weights

hf_constants = pytest.importorskip("huggingface_hub.constants")

REPO = "owner/sse-tiny"
MODEL_FILES = ["model.safetensors", "modules.json", "tokenizer.json"]


@pytest.fixture(autouse=True)
def hub_env(tmp_path, monkeypatch):
    """Cache under tmp_path, no token, online, no xet/telemetry, and only 127.0.0.1 reachable."""
    for name in (
        "HF_ENDPOINT",
        "HF_HUB_OFFLINE",
        "TRANSFORMERS_OFFLINE",
        "HF_TOKEN",
        "HUGGING_FACE_HUB_TOKEN",
        "HF_HUB_CACHE",
        "HUGGINGFACE_HUB_CACHE",
        "HF_HUB_ETAG_TIMEOUT",
        "HF_OIDC_RESOURCE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    for name in ("HF_HUB_DISABLE_TELEMETRY", "HF_HUB_DISABLE_XET", "HF_HUB_DISABLE_PROGRESS_BARS"):
        monkeypatch.setenv(name, "1")
    # huggingface_hub read its environment at import: set what it actually consults.
    monkeypatch.setattr(hf_constants, "HF_HUB_DISABLE_XET", True)
    monkeypatch.setattr(hf_constants, "HF_HUB_DISABLE_TELEMETRY", True)
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hf_constants, "HF_TOKEN_PATH", str(tmp_path / "no-saved-token"))
    # Anything sse_np forgot to pass explicitly would land here / go there: caught below.
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "library-default-cache"))
    monkeypatch.setattr(hf_constants, "ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setattr(
        hf_constants, "HUGGINGFACE_CO_URL_TEMPLATE", "http://127.0.0.1:9/{repo_id}/resolve/{revision}/{filename}"
    )
    real_connect = socket.create_connection

    def loopback_only(address, *args, **kwargs):
        if address[0] not in ("127.0.0.1", "localhost"):
            raise AssertionError(f"test tried to reach {address}")
        return real_connect(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", loopback_only)
    yield tmp_path / "hf_home" / "hub"
    assert not (tmp_path / "library-default-cache").exists()


@pytest.fixture(scope="module")
def sources(tmp_path_factory, tokenizer_json) -> dict[str, Path]:
    """Model folders: main and v1 (other weights) of owner/sse-tiny, plus a sentence-transformers layout."""
    root = tmp_path_factory.mktemp("hub_sources")
    main = make_full(root / "main", tokenizer_json, random_weights(30522, 16, seed=9))
    (main / "modules.json").write_text(json.dumps([{"idx": 0, "name": "0", "path": "", "type": "sse.SSE"}]))
    (main / "README.md").write_text("not downloaded")
    (main / "pytorch_model.bin").write_bytes(b"not downloaded either")
    v1 = make_full(root / "v1", tokenizer_json, random_weights(30522, 16, seed=10))
    st = root / "st"
    (st / "0_StaticEmbedding").mkdir(parents=True)
    (st / "1_Dense").mkdir()
    rng = np.random.default_rng(3)
    table = rng.standard_normal((30522, 8), dtype=np.float32)
    save_file({"embedding.weight": table}, str(st / "0_StaticEmbedding" / "model.safetensors"))
    (st / "0_StaticEmbedding" / "tokenizer.json").write_bytes((main / "tokenizer.json").read_bytes())
    (st / "1_Dense" / "pytorch_model.bin").write_bytes(b"unused module weights")
    (st / "1_Dense" / "config.json").write_text("{}")
    (st / "modules.json").write_text(
        json.dumps(
            [
                {
                    "idx": 0,
                    "name": "0",
                    "path": "0_StaticEmbedding",
                    "type": "sentence_transformers.models.StaticEmbedding",
                },
                {"idx": 1, "name": "1", "path": "1_Dense", "type": "sentence_transformers.models.Dense"},
            ]
        )
    )
    (st / "config_sentence_transformers.json").write_text("{}")
    (st / "README.md").write_text("card")
    (st / "onnx").mkdir()
    (st / "onnx" / "model.onnx").write_bytes(b"not for us")
    return {"main": main, "v1": v1, "st": st}


@pytest.fixture
def hub(sources):
    with FakeHub() as fake:
        fake.commit_main = fake.add_commit(REPO, sources["main"])
        fake.commit_v1 = fake.add_commit(REPO, sources["v1"], ref="v1")
        yield fake


def snapshot_files(folder: Path) -> list[str]:
    """Files under ``folder``, relative, without huggingface_hub's ``.cache`` bookkeeping."""
    files = (p for p in folder.rglob("*") if p.is_file() and ".cache" not in p.parts)
    return sorted(p.relative_to(folder).as_posix() for p in files)


def vectors(path) -> np.ndarray:
    return sse_np.load(path).encode(["hub download", "a second text"])


# 1 ----------------------------------------------------------------------------
def test_download_fetches_only_model_files_into_the_standard_cache(hub, hub_env, sources):
    path = sse_np.download(REPO, endpoint=hub.endpoint)
    storage = hub_env.resolve() / "models--owner--sse-tiny"
    assert path == storage / "snapshots" / hub.commit_main
    assert snapshot_files(path) == MODEL_FILES
    assert (storage / "refs" / "main").read_text() == hub.commit_main
    for name in MODEL_FILES:  # symlinks into blobs/, named by etag: sha256 (LFS) or git sha1
        link = path / name
        assert link.is_symlink() and link.resolve().parent == storage / "blobs"
        assert link.read_bytes() == (sources["main"] / name).read_bytes()
    assert len(list((storage / "blobs").iterdir())) == 3
    asked = " ".join(r.path for r in hub.log)
    assert "README.md" not in asked and "pytorch_model.bin" not in asked
    np.testing.assert_array_equal(vectors(path), vectors(sources["main"]))


def test_load_by_repo_id_honours_hf_endpoint_hf_home_and_hf_hub_cache(hub, hub_env, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    monkeypatch.chdir(tmp_path)
    model = sse_np.load(REPO)
    assert model.dim == 16 and Path(model.path).is_relative_to(hub_env.resolve())
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "elsewhere"))
    assert sse_np.download(REPO).is_relative_to((tmp_path / "elsewhere").resolve())


# 2 ----------------------------------------------------------------------------
def test_cache_hit_makes_no_file_request_and_none_offline(hub, hub_env, monkeypatch):
    path = sse_np.download(REPO, endpoint=hub.endpoint)
    n = len(hub.log)
    assert sse_np.download(REPO, endpoint=hub.endpoint) == path  # online: one metadata request
    assert [r.path.split("?")[0] for r in hub.log[n:]] == [f"/api/models/{REPO}/revision/main"]
    assert sse_np.download(REPO, revision=hub.commit_main, endpoint=hub.endpoint) == path  # a cached commit: none
    n = len(hub.log)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub.close()
    assert sse_np.download(REPO, endpoint=hub.endpoint) == path
    assert sse_np.load(REPO).dim == 16
    assert len(hub.log) == n
    with pytest.raises(sse_np.ModelNotFoundError, match="force=True needs the network"):
        sse_np.download(REPO, endpoint=hub.endpoint, force=True)


def test_force_downloads_again(hub):
    sse_np.download(REPO, endpoint=hub.endpoint)
    n = len(hub.requests("cdn", "GET"))
    sse_np.download(REPO, endpoint=hub.endpoint, force=True)
    assert len(hub.requests("cdn", "GET")) == n + 1


def test_offline_with_empty_cache_is_a_clear_error(hub, hub_env, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    message = r"owner/sse-tiny@main: not in the cache .*HF_HUB_OFFLINE is set"
    with pytest.raises(sse_np.ModelNotFoundError, match=message):
        sse_np.download(REPO, endpoint=hub.endpoint)
    assert hub.log == []


# 3 ----------------------------------------------------------------------------
def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _no_sleeping(monkeypatch) -> list[float]:
    """Record time.sleep calls instead of sleeping: retries with back-off would show here (no clock read)."""
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    return slept


def test_unreachable_hub_is_a_fast_clear_error(monkeypatch):
    """Connection refused: the error at once, no retry and no back-off sleep."""
    endpoint = f"http://127.0.0.1:{closed_port()}"
    slept = _no_sleeping(monkeypatch)
    message = f"owner/sse-tiny@main: not in the cache .* and cannot reach {endpoint} .*Connection refused"
    with pytest.raises(sse_np.ModelNotFoundError, match=message):
        sse_np.download(REPO, endpoint=endpoint)
    assert slept == []


def test_silent_hub_times_out(monkeypatch):
    """A hub that accepts and never answers: one connection, HF_HUB_ETAG_TIMEOUT's timeout, no retry."""
    monkeypatch.setenv("HF_HUB_ETAG_TIMEOUT", "0.5")
    slept = _no_sleeping(monkeypatch)
    with socket.socket() as silent:  # accepts connections (backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        with pytest.raises(sse_np.ModelNotFoundError, match=r"cannot reach .*Timeout"):
            sse_np.download(REPO, endpoint=f"http://127.0.0.1:{silent.getsockname()[1]}")
        silent.setblocking(False)
        tries = 0
        with contextlib.suppress(BlockingIOError):
            while True:
                silent.accept()[0].close()
                tries += 1
    assert tries == 1 and slept == []


def test_unreachable_hub_falls_back_to_the_cache(hub, caplog):
    path = sse_np.download(REPO, endpoint=hub.endpoint)
    hub.close()
    assert sse_np.download(REPO, endpoint=hub.endpoint) == path
    assert "cannot reach" in caplog.text and "using the cached copy" in caplog.text


# 4 ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("repo_id", "revision", "message"),
    [
        ("owner/absent", "main", r"owner/absent@main: no repository owner/absent on http://127\.0\.0\.1:\d+; .*TOKEN"),
        (REPO, "no-such-branch", r"owner/sse-tiny@no-such-branch: no revision 'no-such-branch' in owner/sse-tiny"),
    ],
)
def test_unknown_repository_or_revision_is_a_clear_error(hub, hub_env, repo_id, revision, message):
    with pytest.raises(sse_np.ModelNotFoundError, match=message):
        sse_np.download(repo_id, revision=revision, endpoint=hub.endpoint)
    assert not list(hub_env.glob("models--*/snapshots/*"))


def test_private_and_gated_repositories_need_a_token(hub, sources, monkeypatch):
    hub.add_commit("owner/private", sources["main"], token="hf_secret")
    hub.add_commit("owner/gated", sources["main"], gated=True)
    with pytest.raises(sse_np.ModelNotFoundError, match=r"no repository owner/private.*private.*HF_TOKEN"):
        sse_np.download("owner/private", endpoint=hub.endpoint)
    with pytest.raises(sse_np.ModelNotFoundError, match=r"owner/gated@main: gated repository.*HF_TOKEN"):
        sse_np.download("owner/gated", endpoint=hub.endpoint)
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    n = len(hub.log)
    assert snapshot_files(sse_np.download("owner/private", endpoint=hub.endpoint)) == MODEL_FILES
    assert all(r.headers.get("authorization") == "Bearer hf_secret" for r in hub.log[n:] if r.server == "hub")
    assert not any("authorization" in r.headers for r in hub.requests("cdn"))  # never leaked to the CDN


def test_repository_without_sse_weights_is_refused(hub, hub_env):
    hub.add_commit("owner/bert", {"config.json": b"{}", "pytorch_model.bin": b"x", "README.md": b"y"})
    with pytest.raises(sse_np.ModelNotFoundError, match=r"owner/bert@main: the repository has no SSE weight files"):
        sse_np.download("owner/bert", endpoint=hub.endpoint)
    assert not hub.requests("hub", "HEAD")  # refused from the listing, before any file request


# 5 ----------------------------------------------------------------------------
def test_truncated_transfer_is_refused_then_completed_file_by_file(hub, hub_env, sources):
    hub.truncate["model.safetensors"] = 1000
    size = (sources["main"] / "model.safetensors").stat().st_size
    with pytest.raises(sse_np.ModelLoadError, match=rf"model\.safetensors: received {size - 1000} bytes of {size}"):
        sse_np.download(REPO, endpoint=hub.endpoint)
    storage = hub_env / "models--owner--sse-tiny"
    snapshot = storage / "snapshots" / hub.commit_main
    assert snapshot_files(snapshot) == ["modules.json", "tokenizer.json"]  # the other files were kept
    assert not [p for p in storage.rglob("*") if p.is_file() and p.stat().st_size >= size - 1000]
    assert not (storage / "refs" / "main").exists()
    # A later call fetches only what is missing.
    del hub.truncate["model.safetensors"]
    n = len(hub.log)
    path = sse_np.download(REPO, endpoint=hub.endpoint)
    assert [r.path for r in hub.log[n:] if r.method == "GET" and "/resolve/" in r.path] == []
    assert [r.server for r in hub.log[n:] if r.method == "GET" and r.server == "cdn"] == ["cdn"]
    assert (path / "model.safetensors").read_bytes() == (sources["main"] / "model.safetensors").read_bytes()


def test_size_other_than_the_listing_is_refused(hub, hub_env, sources):
    size = (sources["main"] / "model.safetensors").stat().st_size
    hub.listed_size["model.safetensors"] = size + 4
    message = rf"model\.safetensors has {size} bytes but the repository listing says {size + 4}"
    with pytest.raises(sse_np.ModelLoadError, match=message):
        sse_np.download(REPO, endpoint=hub.endpoint)
    storage = hub_env / "models--owner--sse-tiny"
    assert snapshot_files(storage / "snapshots" / hub.commit_main) == ["modules.json", "tokenizer.json"]
    assert not [p for p in (storage / "blobs").iterdir() if p.stat().st_size == size]
    assert not (storage / "refs" / "main").exists()


def test_damaged_cache_is_refused_offline_and_refetched_online(hub, sources, monkeypatch):
    path = sse_np.download(REPO, endpoint=hub.endpoint)
    blob = (path / "model.safetensors").resolve()
    blob.write_bytes(blob.read_bytes()[:-10])
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(sse_np.ModelLoadError, match=r"model\.safetensors has \d+ bytes but the repository listing"):
        sse_np.download(REPO, endpoint=hub.endpoint)
    assert not blob.exists()  # the damaged blob went with its link
    monkeypatch.delenv("HF_HUB_OFFLINE")
    path = sse_np.download(REPO, endpoint=hub.endpoint)
    assert (path / "model.safetensors").read_bytes() == (sources["main"] / "model.safetensors").read_bytes()


# 6 ----------------------------------------------------------------------------
def test_interrupted_transfer_resumes_with_a_range_request(hub, tmp_path, tokenizer_json):
    # huggingface_hub keeps what it received in DOWNLOAD_CHUNK_SIZE pieces (10 MiB):
    # cut the connection past one piece, in a file a little larger.
    chunk = hf_constants.DOWNLOAD_CHUNK_SIZE
    dim = 2 * ((chunk + (1 << 20)) // (30522 * 4 * 2) + 1)
    big = make_full(tmp_path / "big", tokenizer_json, random_weights(30522, dim, seed=4))
    hub.add_commit("owner/sse-big", big)
    hub.drop_after["model.safetensors"] = chunk + 12345
    path = sse_np.download("owner/sse-big", endpoint=hub.endpoint)
    gets = hub.requests("cdn", "GET")
    assert [r.headers.get("range") for r in gets] == [None, f"bytes={chunk}-"]
    assert (path / "model.safetensors").read_bytes() == (big / "model.safetensors").read_bytes()


# 7 ----------------------------------------------------------------------------
def test_local_dir_gets_plain_files(hub, hub_env, tmp_path, sources, monkeypatch):
    target = tmp_path / "plain"
    assert sse_np.download(REPO, endpoint=hub.endpoint, local_dir=target) == target.resolve()
    assert snapshot_files(target) == MODEL_FILES
    assert not any(p.is_symlink() for p in target.iterdir())
    assert read_folder(sources["main"])["model.safetensors"] == (target / "model.safetensors").read_bytes()
    assert not (hub_env / "models--owner--sse-tiny" / "snapshots").exists()
    np.testing.assert_array_equal(vectors(target), vectors(sources["main"]))
    n = len(hub.log)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert sse_np.download(REPO, endpoint=hub.endpoint, local_dir=target) == target.resolve()
    assert len(hub.log) == n


# 8 ----------------------------------------------------------------------------
def test_tag_and_commit_revisions_are_honoured(hub, hub_env, sources):
    path = sse_np.download(REPO, revision="v1", endpoint=hub.endpoint)
    storage = hub_env.resolve() / "models--owner--sse-tiny"
    assert path == storage / "snapshots" / hub.commit_v1
    assert (storage / "refs" / "v1").read_text() == hub.commit_v1
    np.testing.assert_array_equal(vectors(path), vectors(sources["v1"]))
    main = sse_np.download(REPO, revision=hub.commit_main, endpoint=hub.endpoint)
    assert main == storage / "snapshots" / hub.commit_main
    assert not (storage / "refs" / "main").exists()  # a commit is not a ref
    assert not np.array_equal(vectors(main), vectors(path))


# Layouts ----------------------------------------------------------------------
def test_sentence_transformers_layout_fetches_module_folders(hub, sources):
    hub.add_commit("owner/st-static", sources["st"])
    path = sse_np.download("owner/st-static", endpoint=hub.endpoint)
    assert snapshot_files(path) == [
        "0_StaticEmbedding/model.safetensors",
        "0_StaticEmbedding/tokenizer.json",
        "1_Dense/config.json",
        "config_sentence_transformers.json",
        "modules.json",
    ]
    assert sse_np.load(path).dim == 8


def test_missing_huggingface_hub_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    with pytest.raises(ImportError, match="pip install huggingface_hub"):
        sse_np.download(REPO)


# The command line --------------------------------------------------------------
def test_cli_download_prints_the_folder_and_errors_clearly(hub, hub_env, tmp_path, sources, monkeypatch, capsys):
    from sse_np.cli import main

    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    assert main(["download", REPO]) == 0
    folder = Path(capsys.readouterr().out.strip())
    assert folder.parent == hub_env / "models--owner--sse-tiny" / "snapshots"
    np.testing.assert_array_equal(vectors(folder), vectors(sources["main"]))
    target = tmp_path / "plain"
    assert main(["download", REPO, "--revision", "v1", "--dir", str(target)]) == 0
    assert Path(capsys.readouterr().out.strip()) == target.resolve()
    np.testing.assert_array_equal(vectors(target), vectors(sources["v1"]))
    capsys.readouterr()  # vectors() may print the one-time compile notice; only the command's own output counts
    assert main(["download", "owner/absent"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("sse-np: error: ") and "owner/absent" in err


def test_cli_download_force_fetches_again(hub, hub_env, monkeypatch, capsys):
    """Without --force a cached snapshot is used as it is (a weights file damaged in place stays damaged,
    no file is requested); with --force every file is fetched again and the damage is gone."""
    from sse_np.cli import main

    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    assert main(["download", REPO]) == 0
    weights = Path(capsys.readouterr().out.strip()) / "model.safetensors"
    good = weights.read_bytes()
    damaged = good[:-8] + bytes(8)  # same size: the size check cannot see it
    weights.resolve().write_bytes(damaged)
    files = len(hub.requests("cdn", "GET"))
    assert main(["download", REPO]) == 0
    assert Path(capsys.readouterr().out.strip()) == weights.parent
    assert len(hub.requests("cdn", "GET")) == files and weights.read_bytes() == damaged
    assert main(["download", REPO, "--force"]) == 0
    assert Path(capsys.readouterr().out.strip()) == weights.parent
    assert len(hub.requests("cdn", "GET")) == files + 1 and weights.read_bytes() == good


# Other formats by hub id, each with its real repository's file list ------------------
def test_model2vec_and_static_embedding_repos_load_by_hub_id(hub, hub_env, tmp_path, monkeypatch):
    from helpers import static_models as sm

    gitattributes = b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"
    potion = read_folder(sm.minilm_model2vec(tmp_path / "potion", "plain"))
    assert sorted(potion) == ["README.md", "config.json", "model.safetensors", "modules.json", "tokenizer.json"]
    hub.add_commit("minishlab/potion-base-8M", {**potion, ".gitattributes": gitattributes})
    # static-retrieval-mrl-en-v1 keeps its module in 0_StaticEmbedding/
    st_folder, st_model = sm.st_static(tmp_path / "st", "wordpiece", dim=32)
    module = (
        '[{"idx": 0, "name": "0", "path": "0_StaticEmbedding", "type": "sentence_transformers.models.StaticEmbedding"}]'
    )
    hub.add_commit(
        "sentence-transformers/static-retrieval-mrl-en-v1",
        {
            ".gitattributes": gitattributes,
            "0_StaticEmbedding/model.safetensors": (st_folder / "model.safetensors").read_bytes(),
            "0_StaticEmbedding/tokenizer.json": (st_folder / "tokenizer.json").read_bytes(),
            "README.md": b"---\nlibrary_name: sentence-transformers\n---\n",
            "config_sentence_transformers.json": (st_folder / "config_sentence_transformers.json").read_bytes(),
            "modules.json": module.encode(),
        },
    )
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    texts = ["what is a static embedding", "", "café 日本 [UNK]"]
    model = sse_np.load("minishlab/potion-base-8M")
    assert model.format == "model2vec"
    assert snapshot_files(Path(model.path)) == ["config.json", "model.safetensors", "modules.json", "tokenizer.json"]
    from model2vec import StaticModel

    want = StaticModel.from_pretrained(tmp_path / "potion").encode(texts)
    np.testing.assert_allclose(model.encode(texts), want, atol=1e-6)
    static = sse_np.load("sentence-transformers/static-retrieval-mrl-en-v1")
    assert static.format == "sentence-transformers"
    assert snapshot_files(Path(static.path).parent) == [
        "0_StaticEmbedding/model.safetensors",
        "0_StaticEmbedding/tokenizer.json",
        "config_sentence_transformers.json",
        "modules.json",
    ]
    np.testing.assert_allclose(static.encode(texts), st_model.encode(texts), atol=1e-6)
