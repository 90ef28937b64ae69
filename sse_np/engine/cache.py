"""Where numba keeps the compiled kernels, and a stamp saying they are there.

numba writes next to the source (``sse_np/engine/__pycache__``), else under
the user's cache folder, else (AWS Lambda: read-only package and home)
nowhere, and raises. :func:`ensure_cache_dir` adds a last resort: a private
temporary folder, seeded with kernels shipped in a read-only install.

The stamp (one small file per model signature in that folder) records
that a child process compiled the kernels for this sse_np, numba, Python
and storage kind, so a later process knows, without compiling, that
loading will be quick; when it is missing the kernels are compiled in a
child process (``sse_np.engine.compile``), away from this process's GIL.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

_HERE = Path(__file__).resolve().parent
_KERNEL_SOURCES = (
    "pooling.py",
    "wordpiece.py",
    "wordpiece_lookup.py",
    "dyt.py",
    "dyt_kernels.py",
    "intrinsics.py",
    "wordpiece_tables.py",
)


def _writable_dir(path: Path) -> bool:
    """Whether ``path`` exists or can be made, and takes a file: numba's own test."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=path).close()
        return True
    except OSError:
        return False


def _private_temp_dir() -> Path:
    """``<tmp>/sse_np-numba-cache-<uid>``, made 0700; a fresh one if that is not ours alone.

    Cached kernels are machine code numba will run: never reuse a folder
    another user could have written.
    """
    uid = os.getuid() if hasattr(os, "getuid") else 0
    path = Path(tempfile.gettempdir()) / f"sse_np-numba-cache-{uid}"
    try:
        path.mkdir(mode=0o700, exist_ok=True)
        st = path.lstat()
        if path.is_symlink() or (hasattr(os, "getuid") and st.st_uid != uid) or st.st_mode & 0o022:
            raise PermissionError(path)
        tempfile.TemporaryFile(dir=path).close()
        return path
    except OSError:
        return Path(tempfile.mkdtemp(prefix="sse_np-numba-cache-"))


def cache_dir(numba) -> str | None:
    """numba's folder for this package's kernels, or None if it has nowhere to write."""
    if numba.config.CACHE_DIR:
        return str(numba.config.CACHE_DIR)
    here = _HERE / "__pycache__"
    if _writable_dir(here):
        return str(here)
    from numba.misc.appdirs import AppDirs

    user = Path(AppDirs(appname="numba", appauthor=False).user_cache_dir)
    return str(user) if _writable_dir(user) else None


def ensure_cache_dir(numba) -> str:
    """numba's cache folder for our kernels, pointing numba at a private temp folder if it has none.

    Kernels shipped pre-compiled in a read-only ``sse_np/engine/__pycache__``
    (an image built with a warm cache) are copied there first, so a
    read-only install still starts warm: numba only reads caches from a
    folder it can write.
    """
    found = cache_dir(numba)
    if found is not None:
        return found
    target = _private_temp_dir()
    shipped = _HERE / "__pycache__"
    if shipped.is_dir():
        from numba.core import caching

        # numba's folder for sources under sse_np/engine/ inside CACHE_DIR (the
        # class was private before numba 0.6x).
        locator = getattr(caching, "UserProvidedCacheLocator", None) or caching._UserProvidedCacheLocator  # type: ignore[attr-defined]
        dest = target / locator.get_suitable_cache_subpath(str(_HERE / "pooling.py"))
        try:
            dest.mkdir(parents=True, exist_ok=True)
            for f in shipped.glob("*"):
                to = target if f.suffix in (".stamp", ".npz") else dest  # stamps, Unicode tables; kernels
                if f.suffix in (".nbi", ".nbc", ".stamp", ".npz") and not (to / f.name).exists():
                    shutil.copy2(f, to / f.name)
        except OSError:
            pass  # a partial copy only means some kernels compile again
    numba.config.CACHE_DIR = str(target)
    return str(target)


def stamp_path(numba, signature: str) -> Path:
    """The stamp file for kernels compiled for ``signature`` with these sources and versions."""
    digest = hashlib.sha256()
    for name in _KERNEL_SOURCES:
        digest.update((_HERE / name).read_bytes())
    digest.update(f"{numba.__version__}|{sys.version}|{sys.platform}|{signature}".encode())
    return Path(ensure_cache_dir(numba)) / f"sse_np-{digest.hexdigest()[:20]}.stamp"
