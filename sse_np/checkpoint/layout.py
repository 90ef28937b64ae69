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
from pathlib import Path

from ..errors import ModelLoadError, ModelNotFoundError
from .safetensors import require_regular

FULL_FILE = "model.safetensors"
REST_FILE = "model_rest.safetensors"
Q4_FILE = "embedding.q4_k_m.bin"
TOKENIZER_FILE = "tokenizer.json"
MODULES_FILE = "modules.json"

TABLE_KEY = "embedding.weight"
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
        f"{REST_FILE} + {Q4_FILE}, a {MODULES_FILE}, or 0_StaticEmbedding/; found {found}"
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
