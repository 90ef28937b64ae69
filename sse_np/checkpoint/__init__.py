"""Checkpoints on disk: reading and validating every layout, writing them, downloading them.

* :mod:`~sse_np.checkpoint.layout`      -- which files make a checkpoint, where in a folder;
* :mod:`~sse_np.checkpoint.safetensors` -- safetensors headers parsed and checked, tensors mapped;
* :mod:`~sse_np.checkpoint.read`        -- :func:`read_checkpoint`: validated arrays (:class:`Checkpoint`);
* :mod:`~sse_np.checkpoint.q4`          -- the 4-bit table format;
* :mod:`~sse_np.checkpoint.write`       -- writing the 4-bit layout (imported when used: it needs
  the ``safetensors`` library);
* :mod:`~sse_np.checkpoint.hub`         -- downloads from the Hugging Face hub.
"""

from __future__ import annotations

from .hub import download
from .layout import locate
from .read import Checkpoint, Table, read_checkpoint

__all__ = ["Checkpoint", "Table", "download", "locate", "read_checkpoint"]
