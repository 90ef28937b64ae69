"""Reading model2vec checkpoints (``StaticModel.save_pretrained``), e.g. ``minishlab/potion-base-8M``.

The folder holds ``model.safetensors`` (``embeddings``, optionally
``weights``: one float per token id, and ``mapping``: token id -> row of
``embeddings``, model2vec's vocabulary quantization), ``tokenizer.json`` of
any model type and ``config.json`` (``normalize``, ...). The table may be
float32, float16 or int8 as model2vec writes it; it is memory-mapped.

model2vec's ``encode`` removes the tokenizer's unknown token, cuts each text
to ``max_length`` times the vocabulary's median token length in characters,
then keeps the first ``max_length`` (default 512) tokens; the
:class:`~sse_np.checkpoint.layout.Style` returned here carries those defaults.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ModelLoadError
from .layout import CONFIG_FILE, FULL_FILE, M2V_TABLE_KEY, TOKENIZER_FILE, Style, _read_json
from .read import Checkpoint, Table, _require_finite, check_tokenizer_file
from .safetensors import read_header, require_regular, tensor

#: model2vec's ``StaticModel.encode`` default ``max_length``.
DEFAULT_MAX_LENGTH = 512
_EXTRA = {"weights", "mapping"}


def read_model2vec(root: Path) -> Checkpoint:
    """Read and validate a model2vec folder (its table memory-mapped)."""
    path = root / FULL_FILE
    header, start = read_header(path, other_dtypes=True)
    unknown = sorted(set(header) - {M2V_TABLE_KEY, *_EXTRA})
    if unknown:
        raise ModelLoadError(
            f"{path}: unexpected tensors {unknown} in a model2vec file (expected embeddings, weights, mapping)"
        )
    if header[M2V_TABLE_KEY]["dtype"] not in ("F32", "F16", "I8", "BF16"):
        raise ModelLoadError(
            f"{path}: embeddings are {header[M2V_TABLE_KEY]['dtype']}; supported: float32, float16, bfloat16, int8"
        )
    shape = header[M2V_TABLE_KEY]["shape"]
    if len(shape) != 2 or shape[0] < 1 or shape[1] < 1:
        raise ModelLoadError(f"{path}: embeddings has shape {shape}, expected [rows, dim]")
    data, kind = tensor(path, header, start, M2V_TABLE_KEY)
    table = Table(kind, data)
    _require_finite(path, table)
    tokenizer_path = root / TOKENIZER_FILE
    if not tokenizer_path.exists():
        raise ModelLoadError(f"{tokenizer_path}: missing (a model2vec folder needs its tokenizer file)")
    require_regular(tokenizer_path, "JSON file")
    text, spec = check_tokenizer_file(tokenizer_path)
    n_tokens = _vocab_size(spec)
    mapping = _extra(path, "mapping", n_tokens, table.vocab_size) if "mapping" in header else None
    weights = _extra(path, "weights", n_tokens, None) if "weights" in header else None
    if mapping is None and table.vocab_size < n_tokens:
        raise ModelLoadError(
            f"{path}: embeddings has {table.vocab_size} rows but the tokenizer has {n_tokens} tokens "
            "and there is no mapping (tokenizer and weights from different models?)"
        )
    config = _read_json(root / CONFIG_FILE) if (root / CONFIG_FILE).is_file() else {}
    if not isinstance(config, dict):
        raise ModelLoadError(f"{root / CONFIG_FILE}: expected a JSON object")
    max_length = config.get("max_length", DEFAULT_MAX_LENGTH)
    if max_length is not None and (isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1):
        raise ModelLoadError(f"{root / CONFIG_FILE}: max_length must be a positive int or null, got {max_length!r}")
    style = Style(
        "model2vec",
        normalize=bool(config.get("normalize", False)),
        max_length=max_length,
        chars_per_token=_median_token_length(spec),
    )
    return Checkpoint(
        table,
        None,
        None,
        None,
        layout="model2vec",
        model_dir=root,
        tokenizer_path=tokenizer_path,
        tokenizer_json=text,
        tokenizer_spec=spec,
        mapping=mapping,
        weights=weights,
        drop_id=_unknown_id(spec),
        style=style,
    )


def _extra(path: Path, key: str, n_tokens: int, rows: int | None) -> np.ndarray:
    """``mapping`` (int32, each < ``rows``) or ``weights`` (float32), one entry per token id."""
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as f:
        values = f.get_tensor(key)
    if values.ndim != 1 or values.shape[0] < n_tokens:
        raise ModelLoadError(
            f"{path}: {key} has shape {list(values.shape)}, expected [{n_tokens}] (one entry per token id)"
        )
    if rows is None:
        values = values.astype(np.float32)
        if not np.isfinite(values).all():
            raise ModelLoadError(f"{path}: weights contains NaN or infinite values")
        return values
    if values.dtype.kind not in "iu":
        raise ModelLoadError(f"{path}: mapping is {values.dtype}, expected integers (token id -> row)")
    if values.size and (values.min() < 0 or values.max() >= rows):
        raise ModelLoadError(
            f"{path}: mapping points at rows {int(values.min())}..{int(values.max())}, but embeddings has {rows} rows"
        )
    return values.astype(np.int32)


def _vocab_size(spec: dict) -> int:
    """Token ids the tokenizer can emit: largest id + 1."""
    vocab = spec["model"].get("vocab")
    ids = list(vocab.values()) if isinstance(vocab, dict) else list(range(len(vocab or [])))
    ids += [t.get("id", -1) for t in spec.get("added_tokens") or [] if isinstance(t, dict)]
    return max((i for i in ids if isinstance(i, int)), default=-1) + 1


def _tokens(spec: dict) -> dict[str, int]:
    """Token -> id, added tokens included (``Tokenizer.get_vocab()``)."""
    vocab = spec["model"].get("vocab")
    tokens = dict(vocab) if isinstance(vocab, dict) else {str(e[0]): i for i, e in enumerate(vocab or [])}
    for added in spec.get("added_tokens") or []:
        if isinstance(added, dict) and isinstance(added.get("content"), str):
            tokens[added["content"]] = added.get("id", -1)
    return tokens


def _median_token_length(spec: dict) -> int:
    """``int(median(len(token)))`` over the vocabulary, as model2vec's ``median_token_length``."""
    lengths = [len(t) for t in _tokens(spec)]
    return int(np.median(lengths)) if lengths else 0


def _unknown_id(spec: dict) -> int:
    """The id model2vec removes: the ``unk_token``'s (WordPiece, BPE, WordLevel), Unigram's ``unk_id``; -1: none."""
    model = spec["model"]
    if model.get("type") == "Unigram":
        unk_id = model.get("unk_id")
        return int(unk_id) if isinstance(unk_id, int) and not isinstance(unk_id, bool) else -1
    unk = model.get("unk_token")
    if not isinstance(unk, str):
        return -1
    return int(_tokens(spec).get(unk, -1))
