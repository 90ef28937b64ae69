"""The endpoints: ``/v1/embeddings`` (OpenAI), ``/embed`` (TEI), ``/v1/models``, ``/health``, ``/metrics``."""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .batching import ServerState
from .protocol import ApiError, b64, json_response, parse_bool, parse_dimensions, parse_texts, type_name
from .search import search_route

log = logging.getLogger("sse_np.serve")


def build_routes(state: ServerState) -> list[Route]:
    async def embeddings(request: Request) -> Response:
        try:
            async with state.admit(request):
                return await embeddings_answer(request)
        except ApiError as exc:
            return exc.openai()
        except Exception:
            log.exception("internal error on /v1/embeddings")
            return ApiError(500, "internal server error").openai()

    async def embeddings_answer(request: Request) -> Response:
        body = await state.read(request)
        if not isinstance(body, dict):
            raise ApiError(400, f"request body is a JSON {type_name(body)}, expected an object", None)
        name, model = state.pick(body.get("model"))
        texts = parse_texts(body.get("input"), "input", state.config)
        dim = parse_dimensions(body.get("dimensions"), model)
        fmt = body.get("encoding_format") or "float"
        if fmt not in ("float", "base64"):
            raise ApiError(400, f"encoding_format must be 'float' or 'base64', got {fmt!r}", "encoding_format")
        user = body.get("user")
        if user is not None and not isinstance(user, str):
            raise ApiError(400, f"user is {type_name(user)}, expected str", "user")
        vectors, tokens = await state.encode(name, model, texts, dim, True, True)
        state.metrics.count(name, len(texts), tokens)
        if fmt == "base64":
            data = [{"object": "embedding", "index": i, "embedding": b64(v)} for i, v in enumerate(vectors)]
        else:
            data = [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)]
        return json_response(
            {
                "object": "list",
                "data": data,
                "model": name,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    async def embed(request: Request) -> Response:
        try:
            async with state.admit(request):
                return await embed_answer(request)
        except ApiError as exc:
            if exc.status == 400:  # TEI answers malformed requests with 422
                exc.status = 422
            return exc.tei()
        except Exception:
            log.exception("internal error on /embed")
            return ApiError(500, "internal server error").tei()

    async def embed_answer(request: Request) -> Response:
        body = await state.read(request)
        if not isinstance(body, dict):
            raise ApiError(422, f"request body is a JSON {type_name(body)}, expected an object", None)
        name, model = state.pick(body.get("model"))
        texts = parse_texts(body.get("inputs"), "inputs", state.config)
        dim = parse_dimensions(body.get("dimensions"), model)
        normalize = parse_bool(body.get("normalize"), "normalize", True)
        parse_bool(body.get("truncate"), "truncate", False)
        direction = body.get("truncation_direction")
        if direction is not None and (not isinstance(direction, str) or direction.lower() not in ("left", "right")):
            raise ApiError(
                422, f"truncation_direction must be 'Left' or 'Right', got {direction!r}", "truncation_direction"
            )
        if body.get("prompt_name") is not None:
            raise ApiError(422, "prompt_name: this model defines no prompts", "prompt_name")
        vectors, tokens = await state.encode(name, model, texts, dim, normalize, False)
        state.metrics.count(name, len(texts), tokens)
        return json_response(vectors)

    def model_card(name: str, model: Any) -> dict[str, Any]:
        return {
            "id": name,
            "object": "model",
            "created": state.started,
            "owned_by": "sse_np",
            "dimensions": int(model.dim),
            "vocab_size": int(model.vocab_size),
        }

    async def models(request: Request) -> Response:
        return json_response({"object": "list", "data": [model_card(n, m) for n, m in state.models.items()]})

    async def model_info(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in state.models:
            return ApiError(404, f"The model '{name}' does not exist", "model", "model_not_found").openai()
        return json_response(model_card(name, state.models[name]))

    async def health(request: Request) -> Response:
        if state.draining:
            return json_response({"status": "shutting down"}, 503)
        return json_response({"status": "ok"})

    async def metrics(request: Request) -> Response:
        return Response(state.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    return [
        Route("/v1/embeddings", embeddings, methods=["POST"]),
        Route("/embeddings", embeddings, methods=["POST"]),  # clients whose base_url lacks /v1
        Route("/v1/models", models, methods=["GET"]),
        Route("/v1/models/{name:path}", model_info, methods=["GET"]),
        Route("/embed", embed, methods=["POST"]),
        Route("/v1/search", search_route(state), methods=["POST"]),
        Route("/health", health, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
