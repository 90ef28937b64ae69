"""``POST /v1/search``: dense, BM25 or hybrid search over the indexes given with ``--index NAME=DIR``.

Request: ``{"index": NAME (optional with one index), "query": str or [str],
"k": 10, "mode": "hybrid", "dimensions": null}``. Answer: ``{"object": "list",
"index": NAME, "mode": ..., "data": [{"index": i, "hits": [{"id", "score"}]}]}``,
one entry per query, in order.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from .batching import ServerState
from .protocol import ApiError, is_int, json_response, parse_texts, type_name

log = logging.getLogger("sse_np.serve")
_MODES = ("dense", "bm25", "hybrid")


def search_route(state: ServerState) -> Callable[[Request], Awaitable[Response]]:
    async def search(request: Request) -> Response:
        try:
            async with state.admit(request):  # the same body limits and bytes-in-flight budget as /v1/embeddings
                body = await state.read(request)
                if not isinstance(body, dict):
                    raise ApiError(400, f"request body is a JSON {type_name(body)}, expected an object", None)
                name, index = _pick(state, body.get("index"))
                queries = parse_texts(body.get("query"), "query", state.config)
                k, mode, dim = _options(body, index)
                hits = await run_in_threadpool(index.search, queries, k, mode=mode, dim=dim)
                data = [{"index": i, "hits": h} for i, h in enumerate(hits)]
                return json_response({"object": "list", "index": name, "mode": mode, "data": data})
        except ApiError as exc:
            return exc.openai()
        except Exception:
            log.exception("internal error on /v1/search")
            return ApiError(500, "internal server error").openai()

    return search


def _pick(state: ServerState, name: Any) -> tuple[str, Any]:
    if not state.indexes:
        raise ApiError(404, "no index is served (start the server with --index NAME=DIR)", "index")
    if name is None and len(state.indexes) == 1:
        return next(iter(state.indexes.items()))
    if not isinstance(name, str) or name not in state.indexes:
        known = ", ".join(sorted(state.indexes))
        raise ApiError(404, f"no index named {name!r}; served: {known}", "index", "index_not_found")
    return name, state.indexes[name]


def _options(body: dict[str, Any], index: Any) -> tuple[int, str, int | None]:
    k = body.get("k", 10)
    if not is_int(k) or not 1 <= k <= 10_000:
        raise ApiError(400, f"k must be an int in [1, 10000], got {k!r}", "k")
    mode = body.get("mode", "hybrid")
    if mode not in _MODES:
        raise ApiError(400, f"mode must be one of {', '.join(_MODES)}, got {mode!r}", "mode")
    dim = body.get("dimensions")
    if dim is not None and (not is_int(dim) or not 1 <= dim <= index.dim):
        raise ApiError(400, f"dimensions must be an int in [1, {index.dim}], got {dim!r}", "dimensions")
    if dim is not None and dim != index.dim and index.precision != "float32":
        raise ApiError(400, f"a {index.precision} index searches at its own {index.dim} dimensions", "dimensions")
    return k, mode, dim
