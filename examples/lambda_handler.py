"""AWS Lambda handler serving sse_np text embeddings.

Request: a direct-invocation event, or the JSON body of an API Gateway /
Function URL (proxy) request, base64-encoded or not::

    {"texts": ["first text", "second text"], "dim": 256}   # dim optional (see below)
    {"text": "one text"}                                   # same as {"texts": ["one text"]}

Response (proxy events: ``{"statusCode": 200, "headers": ..., "body": <this as JSON>}``)::

    {"model": "sse_np-default", "dim": 256, "count": 2, "vectors": [[...], [...]]}

Rows are L2-normalised float32 vectors in request order (``model.encode``'s
exact bits). A bad request returns ``{"error": "texts[3] is int, expected str"}``,
for proxy events with statusCode 400; direct invocations get that dict as the
result (no exception, so check for "error"). Unexpected failures raise
(direct) or give statusCode 500 (proxy).

``dim`` defaults as everywhere in sse_np: the model's ``truncate_dim``
(``SSE_NP_TRUNCATE_DIM``, e.g. 256), else its full width.

Search: with ``SSE_NP_INDEX`` set to a saved :class:`sse_np.Index` folder
shipped in the package (``sse-np index build corpus.jsonl -o package/index``,
``SSE_NP_INDEX=index``), ``{"search": "query" (or a list), "k": 10, "mode":
"hybrid"}`` answers ``{"model", "mode", "k", "results": [{"id", "score"}, ...]}``
(a list of those for a list of queries).

Environment: ``SSE_NP_MODEL`` model folder or hub id (default: the model
sse_np ships); ``SSE_NP_TRUNCATE_DIM`` the default ``dim``; ``SSE_NP_THREADS`` threads per request (set it to the vCPU
count: 1 below 1769 MB of memory); ``MAX_TEXTS`` texts per request (default
1024); ``MAX_VALUES`` texts x dim per request (default 262144 = 1024 x 256,
about 3 MB of JSON; Lambda caps responses at 6 MB).

Deploy:

* zip: ``pip install --target package <sse_np wheel or dir>`` (for Lambda's
  platform: ``--platform manylinux2014_x86_64 --only-binary=:all:``), copy this
  file into ``package/``, zip its contents, handler ``lambda_handler.handler``.
  The model installed under ``package/share/sse_np/weights`` is found. For a
  small package install sse_np, numpy, tokenizers and safetensors with
  ``--no-deps`` (no numba/llvmlite) and set ``SSE_NP_DISABLE_NUMBA=1``: the
  NumPy back-end has no compile step and needs ms per request.
* container image: ``FROM public.ecr.aws/lambda/python:3.12``, ``RUN pip install
  <sse_np>``, ``COPY lambda_handler.py ${LAMBDA_TASK_ROOT}``, ``CMD
  ["lambda_handler.handler"]``. Add ``RUN sse-np warmup`` to fill numba's cache at
  build time; otherwise each cold start compiles the kernels (about 5 s, in
  the background while NumPy answers).

The model is loaded once per execution environment, at import, and reused by
warm invocations; numba's kernels load in a background thread after the first
request, which NumPy answers (same bits). Nothing is written except numba's
cache, which sse_np puts in a private temp dir when its install is read-only.

Run locally: ``echo '{"texts": ["hello"], "dim": 32}' | python lambda_handler.py``
or ``python lambda_handler.py event.json``; prints the response JSON, exit
status 1 for an error response.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

try:
    import sse_np
except ImportError:  # run from a source checkout without installing sse_np
    _checkout = Path(__file__).resolve().parents[1]
    if not (_checkout / "sse_np" / "__init__.py").is_file():
        raise
    sys.path.insert(0, str(_checkout))
    import sse_np

import numpy as np

logger = logging.getLogger(__name__)

JSON_HEADERS = {"Content-Type": "application/json"}


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"{name} must be a positive int, got {raw!r}")
    return value


MAX_TEXTS = _env_int("MAX_TEXTS", 1024)
MAX_VALUES = _env_int("MAX_VALUES", 1024 * 256)


def _load_model() -> tuple[sse_np.SSEModel, str]:
    """The model and the name reported in responses."""
    env = os.environ.get("SSE_NP_MODEL", "").strip()
    if env:
        model = sse_np.default_model()  # reads $SSE_NP_MODEL (folder or hub id)
        return model, env if not Path(env).exists() else Path(model.path).name
    # The checkout's weights/, or the copy installed under share/sse_np/weights
    # (also with `pip install --target`); raises ModelNotFoundError if absent.
    return sse_np.default_model(), "sse_np-default"


def _truncated(loaded: tuple[sse_np.SSEModel, str]) -> tuple[sse_np.SSEModel, str]:
    model, name = loaded
    default_dim = _env_int("SSE_NP_TRUNCATE_DIM", 0)
    if default_dim:
        model.truncate_dim = default_dim
    return model, name


# Cold start: load once per execution environment; warm invocations reuse it.
# With the default backend ("auto") the first requests run on NumPy while
# numba loads in the background; SSE_NP_BACKEND=numba loads it here instead
# (about 0.5 s more init, steady latency from the first request).
MODEL, MODEL_NAME = _truncated(_load_model())


def _load_index() -> sse_np.Index | None:
    """``SSE_NP_INDEX``: a saved sse_np.Index shipped with the function (a path relative to this file, or absolute)."""
    where = os.environ.get("SSE_NP_INDEX", "").strip()
    if not where:
        return None
    path = Path(where) if Path(where).is_absolute() else Path(__file__).resolve().parent / where
    return sse_np.Index.load(path, MODEL)  # memory-mapped: milliseconds at cold start


INDEX = _load_index()
SEARCH_FIELDS = {"search", "k", "mode"}


class BadRequest(ValueError):
    """The request is malformed; the message says what to fix."""


def handler(event: Any, context: Any = None) -> dict:
    """Lambda entry point (``lambda_handler.handler``); see the module docstring."""
    proxy = isinstance(event, dict) and ("body" in event or "requestContext" in event)
    try:
        request = _proxy_request(event) if proxy else event
        if isinstance(request, dict) and "search" in request:
            result = _search(request)
        else:
            texts, dim = _parse(request)
            result = _embed(texts, dim)
    except BadRequest as exc:
        return _respond(proxy, 400, {"error": str(exc)})
    except Exception:
        if not proxy:
            raise  # let Lambda record the failed invocation
        logger.exception("embedding failed (request %s)", getattr(context, "aws_request_id", "-"))
        return _respond(proxy, 500, {"error": "internal error"})
    return _respond(proxy, 200, result)


def _respond(proxy: bool, status: int, payload: dict) -> dict:
    if not proxy:
        return payload
    return {"statusCode": status, "headers": dict(JSON_HEADERS), "body": json.dumps(payload, separators=(",", ":"))}


def _proxy_request(event: dict) -> Any:
    """The JSON request inside an API Gateway (v1 or v2) / Function URL event."""
    body = event.get("body")
    if body is None or body == "":
        raise BadRequest('empty request body; POST a JSON object such as {"texts": ["..."], "dim": 256}')
    if not isinstance(body, str):
        raise BadRequest(f"body is {_kind(body)}, expected a JSON string")
    if event.get("isBase64Encoded"):
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest("body is marked isBase64Encoded but is not valid base64") from None
        try:
            body = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadRequest(f"body is not valid UTF-8: {exc}") from None
    return _json_request(body, "body")


def _json_request(text: str | bytes, what: str) -> Any:
    """``json.loads``, with every client mistake a BadRequest (Python's json also raises
    RecursionError for deep nesting and ValueError for integers too long to convert)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadRequest(f"{what} is not valid JSON: {exc}") from None
    except RecursionError:
        raise BadRequest(f"{what} is not valid JSON: nested too deeply") from None
    except ValueError as exc:  # UnicodeDecodeError of bytes, or an over-long integer
        raise BadRequest(f"{what} is not valid JSON: {str(exc).split(';')[0]}") from None


def _parse(request: Any) -> tuple[list[str], int]:
    """Validate a request object; returns (texts, dim)."""
    if not isinstance(request, dict):
        raise BadRequest(f"request must be a JSON object, got {_kind(request)}")
    unknown = sorted(set(request) - {"texts", "text", "dim"})
    if unknown:
        raise BadRequest(f"unknown field {', '.join(map(repr, unknown))}; expected 'texts' (or 'text') and 'dim'")
    if "texts" in request and "text" in request:
        raise BadRequest("send 'texts' (a list) or 'text' (one string), not both")
    if "text" in request:
        if not isinstance(request["text"], str):
            raise BadRequest(f"text is {_kind(request['text'])}, expected str")
        texts = [request["text"]]
    elif "texts" in request:
        texts = request["texts"]
        if not isinstance(texts, list):
            raise BadRequest(f"texts is {_kind(texts)}, expected a list of str")
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise BadRequest(f"texts[{i}] is {_kind(text)}, expected str")
    else:
        raise BadRequest('missing \'texts\'; send {"texts": ["..."], "dim": 256}')

    dim = request.get("dim")
    if dim is None:
        dim = MODEL.get_embedding_dimension()  # sse_np's one rule: truncate_dim, else the full width
    elif isinstance(dim, bool) or not isinstance(dim, int):
        raise BadRequest(f"dim is {_kind(dim)}, expected an int in 1..{MODEL.dim}")
    elif not 1 <= dim <= MODEL.dim:
        trained = ", ".join(str(d) for d in sse_np.MATRYOSHKA_DIMS if d <= MODEL.dim)
        raise BadRequest(f"dim must be in 1..{MODEL.dim} (trained sizes {trained}), got {dim}")

    if len(texts) > MAX_TEXTS:
        raise BadRequest(f"too many texts: {len(texts)} > MAX_TEXTS={MAX_TEXTS}; split the request")
    if len(texts) * dim > MAX_VALUES:
        raise BadRequest(
            f"response too large: {len(texts)} texts x dim {dim} = {len(texts) * dim} values > "
            f"MAX_VALUES={MAX_VALUES}; send fewer texts or a smaller dim"
        )
    return texts, dim


def _search(request: dict) -> dict:
    """``{"search": "query" or [...], "k": 10, "mode": "hybrid"}`` against the shipped index."""
    if INDEX is None:
        raise BadRequest("this function ships no index (set SSE_NP_INDEX to a saved sse_np.Index folder)")
    unknown = sorted(set(request) - SEARCH_FIELDS)
    if unknown:
        raise BadRequest(f"unknown field {', '.join(map(repr, unknown))} in a search; expected 'search', 'k', 'mode'")
    queries, k, mode = request["search"], request.get("k", 10), request.get("mode", "hybrid")
    if not isinstance(queries, str) and not (isinstance(queries, list) and all(isinstance(q, str) for q in queries)):
        raise BadRequest(f"search is {_kind(queries)}, expected a str or a list of str")
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= 1000:
        raise BadRequest(f"k must be an int in 1..1000, got {k!r}")
    if mode not in ("dense", "bm25", "hybrid"):
        raise BadRequest(f"mode must be 'dense', 'bm25' or 'hybrid', got {mode!r}")
    if isinstance(queries, list) and len(queries) > MAX_TEXTS:
        raise BadRequest(f"too many queries: {len(queries)} > MAX_TEXTS={MAX_TEXTS}; split the request")
    return {"model": MODEL_NAME, "mode": mode, "k": k, "results": INDEX.search(queries, k, mode=mode)}


def _embed(texts: list[str], dim: int) -> dict:
    try:
        vectors = MODEL.encode(texts, dim=dim)
    except (TypeError, ValueError) as exc:  # input the tokenizer rejects, e.g. a lone surrogate "\ud800"
        raise BadRequest(str(exc)) from None
    return {"model": MODEL_NAME, "dim": dim, "count": len(texts), "vectors": _float_rows(vectors)}


def _float_rows(vectors: np.ndarray) -> list[list[float]]:
    """float32 rows as Python floats that JSON-encode short and read back exactly.

    ``vectors.tolist()`` would also round-trip (float64 reprs of float32
    values), but spends ~18 characters per number. ``str`` of a numpy float32
    is the shortest decimal that reads back as the same float32 (~10
    characters), so 1024 x 256 vectors are ~3.2 MB of JSON instead of ~5.7 MB
    (Lambda's response limit is 6 MB). Clients recover the exact bits with
    ``np.asarray(response["vectors"], dtype=np.float32)``.
    """
    return [[float(str(x)) for x in row] for row in vectors]


def _kind(value: Any) -> str:
    return "None" if value is None else type(value).__name__


def main(argv: list[str] | None = None) -> int:
    """Read an event (file argument or stdin), print the handler's response as JSON."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) > 1 or args[:1] in (["-h"], ["--help"]):
        print("usage: python lambda_handler.py [event.json]   (default: read the event from stdin)", file=sys.stderr)
        return 2
    try:
        raw = Path(args[0]).read_bytes() if args and args[0] != "-" else sys.stdin.buffer.read()
    except OSError as exc:  # a missing or unreadable event file: one line, no traceback
        print(f"lambda_handler.py: error: cannot read event file {args[0]}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    try:
        event = _json_request(raw, "event")
    except BadRequest as exc:
        response: dict = {"error": str(exc)}
    else:
        response = handler(event, None)
    try:
        print(json.dumps(response, separators=(",", ":")), flush=True)
    except BrokenPipeError:  # piped into `head`: the reader had enough; no traceback, none at exit either
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 1 if "error" in response or response.get("statusCode", 200) >= 400 else 0


if __name__ == "__main__":
    sys.exit(main())
