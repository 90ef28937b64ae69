"""Every documented entry point, run as a new user runs it: a fresh process that can
import only sse_np's run-time dependencies (tests/runtime_env.py), never the test extras.

The test process has torch, sentence-transformers and pytest loaded, which import parts
of shared packages (huggingface_hub's submodules) that sse_np may silently depend on;
these tests see what a user with ``pip install sse_np`` sees.
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import numpy as np
import pytest

import sse_np
import sse_np.eval
from helpers.extras import install_commands
from helpers.fake_hub import FakeHub
from helpers.models import make_full, random_weights
from helpers.paths import REPO
from helpers.runtime_env import TEST_ONLY

pytest.importorskip("huggingface_hub")

HUB_ID = "owner/name"
# The ids the docs send users to, served by the fake hub with small random models (the docs' own
# code blocks, README's included, run in tests/test_docs.py).
README_IDS = {
    "RikkaBotan/stable-static-embedding-fast-retrieval-mrl-en-v2": "full",
    "RikkaBotan/quantized-stable-static-embedding-fast-retrieval-mrl-en": "q4",
    "sentence-transformers/static-retrieval-mrl-en-v1": "static",
}
TEXTS = ["first contact", "a second text", "", "naïve café 東京"]


def _ok(proc) -> str:
    """stdout of a finished run; on failure the assertion shows stderr."""
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-3000:]
    return proc.stdout.decode()


def _one_line_error(proc, pattern: str) -> str:
    err = proc.stderr.decode(errors="replace")
    assert proc.returncode == 1, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert re.search(pattern, err), err
    return err


@pytest.fixture(scope="module")
def models(tmp_path_factory, tokenizer_json) -> dict[str, Path]:
    """Small random models: full (D=8), its 4-bit copy, a sentence-transformers StaticEmbedding repo."""
    from safetensors.numpy import save_file

    from sse_np.checkpoint.write import save_q4

    root = tmp_path_factory.mktemp("fc_models")
    full = make_full(root / "full", tokenizer_json, random_weights(30522, 8, seed=21))
    q4 = save_q4(sse_np.load(full, backend="numpy"), root / "q4")
    st = root / "static"
    (st / "0_StaticEmbedding").mkdir(parents=True)
    table = np.random.default_rng(22).standard_normal((30522, 6), dtype=np.float32)
    save_file({"embedding.weight": table}, str(st / "0_StaticEmbedding" / "model.safetensors"))
    (st / "0_StaticEmbedding" / "tokenizer.json").write_bytes(tokenizer_json.read_bytes())
    (st / "modules.json").write_text(
        json.dumps(
            [
                {
                    "idx": 0,
                    "name": "0",
                    "path": "0_StaticEmbedding",
                    "type": "sentence_transformers.models.StaticEmbedding",
                }
            ]
        )
    )
    return {"full": full, "q4": q4, "static": st}


@pytest.fixture
def hub(models):
    with FakeHub() as fake:
        fake.add_commit(HUB_ID, models["full"])
        for repo_id, layout in README_IDS.items():
            fake.add_commit(repo_id, models[layout])
        yield fake


@pytest.fixture
def home(tmp_path) -> Path:
    (tmp_path / "home").mkdir()
    return tmp_path / "home"


def _vectors(folder: Path, texts=TEXTS, dim=None) -> np.ndarray:
    return sse_np.load(folder, backend="numpy").encode(texts, dim)


# ---------------------------------------------------------------------------
def test_the_environment_has_only_the_runtime_dependencies(runtime_env, home):
    names = runtime_env.names()
    for required in ("numpy", "tokenizers", "safetensors", "numba", "huggingface_hub", "sse_np"):
        assert required in names
    for extra in TEST_ONLY:
        assert extra not in names
    code = (
        "import importlib, json\n"
        "failed = []\n"
        f"for name in {TEST_ONLY!r}:\n"
        "    try:\n        importlib.import_module(name)\n"
        "    except ImportError:\n        failed.append(name)\n"
        "import sse_np\n"
        "print(json.dumps({'failed': failed, 'file': sse_np.__file__,\n"
        "                  'hub_loaded': 'huggingface_hub' in sys.modules, 'torch': 'torch' in sys.modules}))"
    )
    out = json.loads(_ok(runtime_env.python(code, env=runtime_env.env(home=home))))
    assert out["failed"] == list(TEST_ONLY)
    assert out["file"].startswith(str(runtime_env.root))
    assert out["hub_loaded"] is False and out["torch"] is False  # `import sse_np` stays light


# -- confirmed failure 1: loading by hub id -----------------------------------------
def test_load_by_hub_id(runtime_env, hub, home, models, tmp_path):
    out = tmp_path / "vectors.npy"
    code = (
        "import numpy, sse_np\n"
        f"model = sse_np.load({HUB_ID!r})\n"
        f"numpy.save(sys.argv[1], model.encode({TEXTS!r}))\n"
        "print(model.path)"
    )
    path = _ok(runtime_env.python(code, str(out), env=runtime_env.env({"HF_ENDPOINT": hub.endpoint}, home=home)))
    assert Path(path.strip()).is_relative_to(home / "hf_home" / "hub")
    np.testing.assert_array_equal(np.load(out), _vectors(models["full"]))


def test_cli_download_by_hub_id(runtime_env, hub, home, models):
    env = runtime_env.env({"HF_ENDPOINT": hub.endpoint}, home=home)
    folder = Path(_ok(runtime_env.cli("download", HUB_ID, env=env)).strip())
    assert folder.is_relative_to(home / "hf_home" / "hub")
    assert (folder / "model.safetensors").read_bytes() == (models["full"] / "model.safetensors").read_bytes()
    local = home / "local"
    assert Path(_ok(runtime_env.cli("download", HUB_ID, "--dir", str(local), env=env)).strip()) == local


def test_cli_encode_with_hub_id(runtime_env, hub, home, models, tmp_path):
    (tmp_path / "in.txt").write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    env = runtime_env.env({"HF_ENDPOINT": hub.endpoint}, home=home)
    proc = runtime_env.cli("encode", "in.txt", "-o", "out.npy", "--model", HUB_ID, env=env, cwd=tmp_path)
    _ok(proc)
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), _vectors(models["full"]))


def test_cli_unknown_hub_id_is_one_line(runtime_env, hub, home, tmp_path):
    env = runtime_env.env({"HF_ENDPOINT": hub.endpoint}, home=home)
    _one_line_error(
        runtime_env.cli("download", "owner/absent", env=env), r"^sse-np: error: owner/absent@main: no repository"
    )
    (tmp_path / "in.txt").write_text("x\n")
    _one_line_error(
        runtime_env.cli("encode", "in.txt", "-o", "o.npy", "--model", "owner/absent", env=env, cwd=tmp_path),
        r"no repository owner/absent",
    )
    assert not (tmp_path / "o.npy").exists()


# -- every subcommand ------------------------------------------------------------------
def test_cli_encode_info_warmup_quantize(runtime_env, home, models, tmp_path):
    env = runtime_env.env(home=home)
    model = str(models["full"])
    records = [{"_id": f"d{i}", "text": t} for i, t in enumerate(TEXTS)]
    with gzip.open(tmp_path / "in.jsonl.gz", "wt", encoding="utf-8") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in records)
    _ok(
        runtime_env.cli(
            "encode", "in.jsonl.gz", "-o", "out.jsonl", "--dim", "4", "--model", model, env=env, cwd=tmp_path
        )
    )
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["_id"] for r in rows] == [r["_id"] for r in records]
    np.testing.assert_array_equal(
        np.array([r["embedding"] for r in rows], dtype=np.float32), _vectors(models["full"], dim=4)
    )
    stdin = "\n".join(TEXTS).encode()
    out = runtime_env.cli("encode", "-", "-o", "-", "--model", model, env=env, stdin=stdin)
    got = np.array([json.loads(line)["embedding"] for line in _ok(out).splitlines()], dtype=np.float32)
    np.testing.assert_array_equal(got, _vectors(models["full"]))

    info = json.loads(_ok(runtime_env.cli("info", "--json", "--model", model, env=env)))
    assert info["layout"] == "full" and info["dim (D)"] == 8 and info["vocab_size (V)"] == 30522
    assert info["numba"].startswith("off")
    assert _ok(runtime_env.cli("warmup", "--model", model, env=env)).strip() == "backend numpy"

    _ok(runtime_env.cli("quantize", str(tmp_path / "q4"), "--model", model, env=env))
    np.testing.assert_array_equal(_vectors(tmp_path / "q4"), _vectors(models["q4"]))


def test_cli_eval_on_a_tiny_beir_folder(runtime_env, home, models, tmp_path):
    sse_np.eval.write_beir(
        tmp_path / "tiny",
        {"d1": "static embeddings on cpu", "d2": "a cat sat", "d3": "numpy"},
        {"q1": "static embedding", "q2": "cat"},
        {"q1": {"d1": 1}, "q2": {"d2": 1}},
    )
    env = runtime_env.env(home=home)
    proc = runtime_env.cli(
        "eval",
        str(tmp_path / "tiny"),
        "--dims",
        "8,4",
        "--model",
        str(models["full"]),
        "--json",
        str(tmp_path / "r.json"),
        "-q",
        env=env,
    )
    assert "ndcg@10" in _ok(proc).lower()
    report = json.loads((tmp_path / "r.json").read_text())
    want = sse_np.eval.evaluate(
        sse_np.load(models["full"], backend="numpy"), [tmp_path / "tiny"], dims=(8, 4), progress=False
    )
    for dim in (8, 4):
        assert report["mean"][str(dim)]["ndcg@10"] == pytest.approx(want["mean"][dim]["ndcg@10"], abs=0)
    # matplotlib is an extra: --plot says which one, before the run, and writes nothing.
    proc = runtime_env.cli(
        "eval", str(tmp_path / "tiny"), "--model", str(models["full"]), "--plot", str(tmp_path / "p.png"), env=env
    )
    _one_line_error(proc, r"sse-np: error: .*" + re.escape(install_commands("plot")))
    assert not (tmp_path / "p.png").exists()


def test_python_m_sse_np(runtime_env, home):
    out = _ok(
        runtime_env.python(
            "import runpy; sys.argv[0] = 'sse_np'; runpy.run_module('sse_np', run_name='__main__')",
            "--version",
            env=runtime_env.env(home=home),
        )
    )
    assert out.strip() == f"sse-np {sse_np.__version__}"


# -- the Lambda example ------------------------------------------------------------------
HANDLER = REPO / "examples" / "lambda_handler.py"


@pytest.mark.parametrize("numba", ["0", "1"], ids=["numba-off", "default"])
def test_lambda_example_local_runner(runtime_env, home, models, numba):
    env = runtime_env.env(
        {"SSE_NP_MODEL": str(models["full"]), "SSE_NP_DISABLE_NUMBA": None if numba == "1" else "1"}, home=home
    )
    env = {k: v for k, v in env.items() if v is not None}
    event = json.dumps({"texts": TEXTS, "dim": 4}).encode()
    response = json.loads(_ok(runtime_env.script(HANDLER, env=env, stdin=event)))
    np.testing.assert_array_equal(np.array(response["vectors"], dtype=np.float32), _vectors(models["full"], dim=4))
    bad = runtime_env.script(HANDLER, env=env, stdin=b'{"texts": [1]}')
    assert bad.returncode == 1 and "texts[0] is int" in bad.stdout.decode()


# -- the slim install (no numba) ------------------------------------------------------------
def test_slim_install_without_numba(slim_env, home, models, tmp_path):
    """README, "Slim install without numba": the pure-NumPy path answers, same bits, nothing tries numba."""
    assert "numba" not in slim_env.names() and "llvmlite" not in slim_env.names()
    env = {k: v for k, v in slim_env.env(home=home).items() if k != "SSE_NP_DISABLE_NUMBA"}
    out = tmp_path / "v.npy"
    code = (
        "import numpy, sse_np\n"
        "try:\n    import numba\nexcept ImportError:\n    pass\nelse:\n    sys.exit('numba importable')\n"
        f"model = sse_np.load({str(models['full'])!r})\n"
        f"numpy.save(sys.argv[1], model.encode({TEXTS!r}))\n"
        "print(model.warmup())"
    )
    assert _ok(slim_env.python(code, str(out), env=env)).strip() == "numpy"
    np.testing.assert_array_equal(np.load(out), _vectors(models["full"]))
    info = json.loads(_ok(slim_env.cli("info", "--json", "--model", str(models["full"]), env=env)))
    assert info["numba"].startswith("not installed")
    event = json.dumps({"texts": TEXTS, "dim": 4}).encode()
    response = json.loads(_ok(slim_env.script(HANDLER, env={**env, "SSE_NP_MODEL": str(models["full"])}, stdin=event)))
    np.testing.assert_array_equal(np.array(response["vectors"], dtype=np.float32), _vectors(models["full"], dim=4))


# -- optional extras: each door names its extra in one line ---------------------------------
def test_optional_extras_name_themselves(runtime_env, home, models, tmp_path):
    env = runtime_env.env(home=home)
    _one_line_error(
        runtime_env.cli("serve", "--model", str(models["full"]), "--port", "18765", env=env, cwd=tmp_path),
        "^" + re.escape(f"sse-np: error: sse_np.serve needs the 'serve' extra: {install_commands('serve')}"),
    )
    for module, extra in (
        ("sse_np.serve", "serve"),
        ("sse_np.integrations.langchain", "langchain"),
        ("sse_np.integrations.llamaindex", "llamaindex"),
    ):
        code = (
            f"try:\n    import {module}\nexcept ImportError as exc:\n    print(exc)\n"
            "else:\n    sys.exit('imported without its extra')"
        )
        out = _ok(runtime_env.python(code, env=env, cwd=tmp_path)).strip()
        assert out.endswith(install_commands(extra)) and "\n" not in out, out
