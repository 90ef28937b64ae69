"""What a missing-extra error must tell the user: install commands that work from a checkout and from a wheel."""

from __future__ import annotations

import sse_np


def install_commands(extra: str) -> str:
    """The commands every missing-extra message ends with, spelled out (not taken from sse_np's code)."""
    wheel = f"sse_np-{sse_np.__version__}-py3-none-any.whl"
    return f"pip install -e '.[{extra}]' in a checkout of sse_np, or pip install '{wheel}[{extra}]' from the wheel"
