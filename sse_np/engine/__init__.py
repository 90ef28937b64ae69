"""The engine: back-ends, kernels and their lifecycle (see :mod:`sse_np.engine.core`).

* ``core``            -- :class:`Engine`: which back-end answers, loading numba in the background;
* ``numpy_backend``   -- the NumPy back-end (the readable reference);
* ``numba_backend``   -- the jitted back-end: one parallel region per call;
* ``wordpiece``, ``pooling``, ``dyt`` -- its kernels; ``wordpiece_tables``,
  ``unicode_tables`` -- the jitted tokenizer's tables;
* ``parallel``        -- sse_np's one thread pool;
* ``jit``, ``cache``, ``compile`` -- loading numba, its cache, compiling in a child;
* ``texts``           -- texts as one UTF-8 buffer (``Utf8Texts``).
"""

from .core import BACKENDS, Engine, import_numba
from .dyt import normalize_rows
from .jit import numba_available, numba_disabled_by_env, numba_loading
from .texts import NotUtf8Error, Utf8Texts

__all__ = [
    "BACKENDS",
    "Engine",
    "NotUtf8Error",
    "Utf8Texts",
    "import_numba",
    "normalize_rows",
    "numba_available",
    "numba_disabled_by_env",
    "numba_loading",
]
