"""Reading JSON lines: every way Python's ``json`` refuses a line becomes a :class:`DataError` naming it.

Used by every reader of JSON-lines files (``sse-np encode``'s input, BEIR
datasets), so none depends on another's file handling.
"""

from __future__ import annotations

import json
from typing import Any

from .errors import DataError


def json_line(line: str, name: str, number: int) -> Any:
    """``json.loads(line)``; every way Python's json refuses a line is a DataError naming ``name:number``.

    Besides ``JSONDecodeError``, ``json`` raises ``RecursionError`` for deep
    nesting and a plain ``ValueError`` for integers longer than
    ``sys.get_int_max_str_digits()``; both are the input's fault.

    Parameters
    ----------
    line : str
        One line of a JSONL file.
    name : str
        The file, for the message.
    number : int
        1-based line number.

    Returns
    -------
    The decoded value.
    """
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        raise DataError(name, f"invalid JSON ({exc.msg} at column {exc.colno})", number) from None
    except RecursionError:
        raise DataError(name, "invalid JSON (nested too deeply to read)", number) from None
    except ValueError as exc:  # e.g. an integer longer than Python converts (sys.get_int_max_str_digits)
        raise DataError(name, f"invalid JSON ({str(exc).split(';')[0]})", number) from None
