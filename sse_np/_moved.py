"""Old module paths and root names, importable for one more release with a ``DeprecationWarning``.

One mechanism for every move: a meta-path finder answers the old module
names of :data:`MOVED_MODULES` with a stand-in module whose attributes are
looked up in the new modules, in order; :func:`root_getattr` does the same
for names that left the package root. Delete an entry (or this module) when
the release that announced the move is out.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types
import warnings
from collections.abc import Sequence
from typing import Any

#: old module -> the modules its names live in now (searched in order)
MOVED_MODULES: dict[str, tuple[str, ...]] = {
    "sse_np.api": ("sse_np.defaults", "sse_np.retrieval.similarity"),
    "sse_np.loading": ("sse_np.checkpoint.read", "sse_np.checkpoint.layout", "sse_np.checkpoint.q4"),
    "sse_np.quantize": ("sse_np.checkpoint.q4",),
    "sse_np.convert": ("sse_np.checkpoint.write",),
    "sse_np.hub": ("sse_np.checkpoint.hub",),
    "sse_np.search": ("sse_np.retrieval.search", "sse_np.retrieval.topk", "sse_np.retrieval.hamming"),
    "sse_np._search_numba": ("sse_np.retrieval.kernels",),
    "sse_np.quantization": ("sse_np.retrieval.quantization",),
    "sse_np.streams": ("sse_np.bulk.readers", "sse_np.bulk.writers", "sse_np.jsonl", "sse_np.progress"),
    "sse_np.parquet": ("sse_np.bulk.parquet",),
    "sse_np.ray_data": ("sse_np.bulk.ray",),
    "sse_np.tokenizing": ("sse_np.tokenizer", "sse_np.engine.wordpiece_tables"),
    "sse_np.utf8_texts": ("sse_np.engine.texts",),
    "sse_np.engine.reference": ("sse_np.engine.numpy_backend", "sse_np.engine.dyt"),
}

#: names that lived in the package root -> their module now
MOVED_ROOT_NAMES: dict[str, str] = {
    name: "sse_np.eval"
    for name in (
        "DEFAULT_DIMS",
        "METRICS",
        "evaluate",
        "format_report",
        "load_beir",
        "plot_report",
        "save_report",
        "write_beir",
    )
}


def _warn(message: str) -> None:
    # stacklevel 3: the code that imported or looked up the old name (warnings skips importlib's frames).
    warnings.warn(message, DeprecationWarning, stacklevel=3)


class _MovedModule(types.ModuleType):
    """Stand-in for an old module: every attribute comes from the new modules."""

    def __init__(self, name: str, targets: Sequence[str]) -> None:
        super().__init__(name, f"Moved to {', '.join(targets)}; this name goes in the next release.")
        self.__targets = tuple(targets)

    def __getattr__(self, attr: str) -> Any:
        for target in self.__targets:
            module = importlib.import_module(target)
            if hasattr(module, attr):
                return getattr(module, attr)
        raise AttributeError(f"module {self.__name__!r} has no attribute {attr!r}")

    def __dir__(self) -> list[str]:
        names = set(super().__dir__())
        for target in self.__targets:
            names.update(dir(importlib.import_module(target)))
        return sorted(names)


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds only the old names of :data:`MOVED_MODULES`; every other import passes by."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MOVED_MODULES:
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return _MovedModule(spec.name, MOVED_MODULES[spec.name])

    def exec_module(self, module: types.ModuleType) -> None:
        targets = " and ".join(MOVED_MODULES[module.__name__])
        _warn(f"{module.__name__} moved to {targets}; the old name goes in the next release")


def root_getattr(name: str) -> Any:
    """``sse_np.<name>`` for names that moved out of the package root (the root's ``__getattr__``)."""
    if name in MOVED_ROOT_NAMES:
        target = MOVED_ROOT_NAMES[name]
        _warn(f"sse_np.{name} moved to {target}.{name}; the old name goes in the next release")
        return getattr(importlib.import_module(target), name)
    raise AttributeError(f"module 'sse_np' has no attribute {name!r}")


if not any(isinstance(finder, _Finder) for finder in sys.meta_path):
    sys.meta_path.insert(0, _Finder())
