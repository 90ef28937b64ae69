"""Which files make a checkpoint, and where in a folder they are.

Three layouts (see ``docs/reference/spec.md``), each in the folder itself or
in a module folder of a sentence-transformers repository (``modules.json``):
``full`` (``model.safetensors`` with DyT), ``q4`` (``model_rest.safetensors``
+ ``embedding.q4_k_m.bin``) and ``static`` (a ``StaticEmbedding`` module).
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelLoadError, ModelNotFoundError
from .safetensors import require_regular

FULL_FILE = "model.safetensors"
REST_FILE = "model_rest.safetensors"
Q4_FILE = "embedding.q4_k_m.bin"
TOKENIZER_FILE = "tokenizer.json"
MODULES_FILE = "modules.json"

CONFIG_FILE = "config.json"
ST_CONFIG_FILE = "config_sentence_transformers.json"
TABLE_KEY = "embedding.weight"
M2V_TABLE_KEY = "embeddings"  # model2vec's own name for its table
DYT_KEYS = ("dyt.alpha", "dyt.beta", "dyt.bias")


# --------------------------------------------------------------------------
# Finding the layout in a folder
# --------------------------------------------------------------------------
def _layout_of(folder: Path, static_hint: bool) -> str | None:
    # lexists: a dangling link or a weight "file" that is a folder or device counts as present (and is
    # refused by name when read), instead of silently falling through to another layout.
    q4 = [name for name in (REST_FILE, Q4_FILE) if os.path.lexists(folder / name)]
    full = os.path.lexists(folder / FULL_FILE)
    if q4 and full:
        raise ModelLoadError(
            f"{folder}: holds two layouts, {FULL_FILE} (full precision) and {' + '.join(q4)} (4-bit); "
            "refusing to guess which to load: move one of them to a folder of its own"
        )
    if q4:
        return "q4"
    if full:
        return "static" if static_hint else "full"
    return None


def _is_static_name(name: str) -> bool:
    return name.endswith("StaticEmbedding")


def _modules(root: Path) -> list[tuple[Path, bool]]:
    """Module folders named by ``modules.json``, each with a StaticEmbedding hint."""
    path = root / MODULES_FILE
    try:
        require_regular(path, "JSON file")
        entries = json.loads(path.read_text(encoding="utf-8"))
        out = []
        for entry in sorted(entries, key=lambda e: int(e.get("idx", 0))):
            rel = entry.get("path", "") or ""
            if not isinstance(rel, str) or Path(rel).is_absolute() or ".." in Path(rel).parts:
                raise ValueError(f"module path {rel!r} leaves the repository folder")
            hint = "StaticEmbedding" in str(entry.get("type", "")) or _is_static_name(Path(rel).name)
            out.append((root / rel, hint))
        return out
    except RecursionError:
        raise ModelLoadError(f"{path}: cannot read module list (JSON nested too deeply)") from None
    except (OSError, UnicodeDecodeError, AttributeError, TypeError, ValueError, OverflowError) as exc:
        # OverflowError: "idx": 1e400 reads as inf, which int() refuses
        raise ModelLoadError(f"{path}: cannot read module list ({exc})") from None


def locate(root: str | os.PathLike) -> tuple[Path, str]:
    """Find the folder holding the weights and its layout.

    Parameters
    ----------
    root : path
        A model folder or a sentence-transformers repository folder.

    Returns
    -------
    (model_dir, layout)
    """
    root = Path(root)
    if not root.exists():
        raise ModelNotFoundError(f"{root}: no such model folder")
    if not root.is_dir():
        raise ModelLoadError(f"{root}: expected a model folder, got a file")
    if (root / MODULES_FILE).exists():
        for folder, hint in _modules(root):
            layout = _layout_of(folder, hint)
            if layout:
                return folder, layout
        raise ModelLoadError(
            f"{root / MODULES_FILE}: none of the listed module folders holds {FULL_FILE}, or {REST_FILE} + {Q4_FILE}"
        )
    layout = _layout_of(root, _is_static_name(root.name))
    if layout:
        return root, layout
    for sub in sorted(root.glob("*StaticEmbedding")):
        if sub.is_dir() and (sub / FULL_FILE).exists():
            return sub, "static"
    found = sorted(p.name for p in root.iterdir())[:12]
    if not found:
        raise ModelNotFoundError(f"{root}: folder is empty, no model files")
    # No weight file at all: "not found" (a ModelLoadError too), so callers can
    # tell an empty model folder from a broken one.
    raise ModelNotFoundError(
        f"{root}: unrecognised model layout, no weight files; expected {FULL_FILE} (+ {TOKENIZER_FILE}), "
        f"{REST_FILE} + {Q4_FILE}, a {MODULES_FILE}, 0_StaticEmbedding/, or a model2vec folder "
        f"({FULL_FILE} with 'embeddings' + {TOKENIZER_FILE} + {CONFIG_FILE}); found {found}"
    )


def find_tokenizer(model_dir: Path, root: Path) -> Path:
    """``tokenizer.json`` beside the weights, else at the repository root."""
    for folder in (model_dir, root):
        path = folder / TOKENIZER_FILE
        if os.path.lexists(path):
            require_regular(path, "JSON file")
            return path
    raise ModelLoadError(f"{model_dir / TOKENIZER_FILE}: missing (every layout needs the tokenizer file)")


def model_folders(root: Path, model_dir: Path) -> list[Path]:
    """The folders a model's files are read from: ``root``, the weights' folder and every listed module folder."""
    folders = [root, model_dir]
    if (root / MODULES_FILE).is_file():
        with contextlib.suppress(ModelLoadError):  # it loaded, so the list is readable; if not, no more folders
            folders += [folder for folder, _ in _modules(root)]
    return list(dict.fromkeys(Path(os.path.realpath(f)) for f in folders))


def model_files(root: Path, model_dir: Path) -> list[Path]:
    """Every file in the model's folders: what a writing command must never overwrite (configs too)."""
    found = []
    for folder in model_folders(root, model_dir):
        try:
            found += [p for p in folder.iterdir() if not p.is_dir()]
        except OSError:
            continue
    return found


# --------------------------------------------------------------------------
# Formats other than SSE's own
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class Style:
    """What a format's own library does by default, so ``encode`` can do the same.

    Attributes
    ----------
    format : {"sse", "model2vec", "sentence-transformers"}
    normalize : bool
        ``encode``'s default for ``normalize``.
    normalize_module : bool
        A sentence-transformers ``Normalize`` module: the full-width vector is
        normalized before any truncation (as its forward pass does).
    truncate_dim : int or None
        From ``config_sentence_transformers.json``.
    max_length : int or None
        Default token limit (model2vec: 512).
    chars_per_token : int
        model2vec cuts each text to ``max_length * chars_per_token`` characters
        (its vocabulary's median token length) before tokenizing; 0: no cut.
    """

    format: str = "sse"
    normalize: bool = True
    normalize_module: bool = False
    truncate_dim: int | None = None
    max_length: int | None = None
    chars_per_token: int = 0


def is_model2vec(root: Path) -> bool:
    """A model2vec folder: ``model.safetensors`` at the root whose table is named ``embeddings``."""
    path = root / FULL_FILE
    if not path.is_file():
        return False
    from .safetensors import read_header

    try:
        return M2V_TABLE_KEY in read_header(path, other_dtypes=True)[0]
    except ModelLoadError:  # not a readable model2vec file: the SSE reader says what is wrong
        return False


def _read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, RecursionError, ValueError) as exc:
        raise ModelLoadError(f"{path}: cannot read ({exc})") from None


def sentence_transformers_style(root: Path) -> Style:
    """The defaults of a StaticEmbedding repository: a ``Normalize`` module, ``truncate_dim``.

    Without ``modules.json`` (a bare StaticEmbedding folder) SSE's own defaults stay.
    """
    if not (root / MODULES_FILE).is_file():
        return Style()
    modules = _read_json(root / MODULES_FILE)
    types = [str(m.get("type", "")) for m in modules if isinstance(m, dict)] if isinstance(modules, list) else []
    has_norm = any(t.endswith("Normalize") for t in types)
    truncate = None
    if (root / ST_CONFIG_FILE).is_file():
        config = _read_json(root / ST_CONFIG_FILE)
        truncate = config.get("truncate_dim") if isinstance(config, dict) else None
        if truncate is not None and (isinstance(truncate, bool) or not isinstance(truncate, int) or truncate < 1):
            raise ModelLoadError(f"{root / ST_CONFIG_FILE}: truncate_dim must be a positive int, got {truncate!r}")
    return Style("sentence-transformers", normalize=has_norm, normalize_module=has_norm, truncate_dim=truncate)
