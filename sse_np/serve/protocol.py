"""The wire protocol: OpenAI's and TEI's error shapes, request parsing with errors naming the field, JSON out."""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from .config import ServeConfig, is_int

_orjson: Any
try:  # 5-20x faster float responses (measured); float32 printed in its shortest round-trip form
    import orjson as _orjson
except ImportError:  # pragma: no cover - depends on the environment
    _orjson = None


class ApiError(Exception):
    """A client (4xx) or server (5xx) error answered in the endpoint's error shape."""

    def __init__(
        self, status: int, message: str, param: str | None = None, code: str | None = None, kind: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.kind = kind or ("invalid_request_error" if status < 500 else "server_error")

    def openai(self) -> Response:
        body = {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}
        return json_response(body, self.status)

    def tei(self) -> Response:
        # TEI's error types: Validation (413/422), Empty (400), Unhealthy (503), Backend (500)
        kind = {413: "Validation", 422: "Validation", 400: "Empty", 404: "Validation", 503: "Unhealthy"}
        return json_response({"error": self.message, "error_type": kind.get(self.status, "Backend")}, self.status)


def type_name(value: Any) -> str:
    return {dict: "object", list: "array", type(None): "null"}.get(type(value), type(value).__name__)


SMALL_BODY = 64 * 1024  # bodies up to this size are parsed on the event loop (cheaper than a thread hop)
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')  # a JSON string: what a skeleton scan skips
EXTRA_VALUES = 256  # JSON values a request may hold besides its texts (model, dimensions, unknown fields)


def declared_length(request: Request, limit: int) -> int | None:
    """The body's Content-Length, refused (413) at once when over ``limit``; None when not given."""
    length = request.headers.get("content-length")
    if length is None or not length.isdigit():
        return None
    if int(length) > limit:
        raise ApiError(
            413, f"request body is {int(length)} bytes, limit {limit} (--max-body-bytes)", None, "body_too_large"
        )
    return int(length)


async def read_body(request: Request, limit: int) -> bytes:
    """The body, read incrementally and refused (413) as soon as it passes ``limit`` bytes."""
    declared_length(request, limit)
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise ApiError(413, f"request body exceeds {limit} bytes (--max-body-bytes)", None, "body_too_large")
            chunks.append(chunk)
    except ClientDisconnect:  # nobody to answer; not a server error
        raise ApiError(400, "the client disconnected before sending the whole body", None) from None
    return b"".join(chunks)


async def parse_body(raw: bytes, max_inputs: int) -> Any:
    """The body as JSON: small ones on the event loop, larger ones in a thread after a cheap shape check."""
    if len(raw) <= SMALL_BODY:
        return parse_json(raw, None)
    return await asyncio.get_running_loop().run_in_executor(None, parse_json, raw, max_inputs + EXTRA_VALUES)


def parse_json(raw: bytes, max_values: int | None) -> Any:
    """JSON (UTF-8 only); with ``max_values``, a body holding more values than a valid request can is
    refused before it is parsed (``[{}, {}, ...]`` would otherwise take 1 GB and seconds to build)."""
    if max_values is not None:
        skeleton = _STRING.sub(b"", raw)  # what is left outside strings: a valid request's few brackets and commas
        values = skeleton.count(b",") + skeleton.count(b"[") + skeleton.count(b"{")
        if values > max_values:
            raise ApiError(
                413,
                f"request body holds {values} JSON values outside strings; a request holds at most {max_values} "
                "(its texts, limited by --max-inputs, and a few fields)",
                None,
                "too_many_values",
            )
    try:  # JSON on the wire is UTF-8 (RFC 8259); json.loads(bytes) would also guess UTF-16/32
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ApiError(400, f"request body is not valid UTF-8 (byte {exc.start})", None, "invalid_json") from None
    except ValueError as exc:
        raise ApiError(400, f"request body is not valid JSON: {exc}", None, "invalid_json") from None
    except RecursionError:
        raise ApiError(400, "request body is not valid JSON: nested too deeply", None, "invalid_json") from None


def parse_texts(value: Any, field_name: str, limits: ServeConfig) -> list[str]:
    """``input``/``inputs`` as a list of str, or an ApiError naming the field and item."""
    if isinstance(value, str):
        texts = [value]
    elif isinstance(value, list):
        texts = value
        if not texts:
            raise ApiError(400, f"{field_name} is an empty list; send at least one text", field_name)
        if all(is_int(v) for v in texts) or all(isinstance(v, list) for v in texts):
            raise ApiError(
                400,
                f"{field_name} holds token ids; this server embeds text only: send the texts "
                "as strings (token ids of another tokenizer, e.g. tiktoken's, do not apply to "
                "this model's vocabulary)",
                field_name,
                "token_ids_unsupported",
            )
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise ApiError(400, f"{field_name}[{i}] is {type_name(text)}, expected str", field_name)
    elif value is None:
        raise ApiError(400, f"{field_name} is required (a string or a list of strings)", field_name)
    else:
        raise ApiError(400, f"{field_name} is {type_name(value)}, expected str or a list of str", field_name)
    if len(texts) > limits.max_inputs:
        raise ApiError(
            413,
            f"{field_name} has {len(texts)} texts, limit {limits.max_inputs} (--max-inputs)",
            field_name,
            "too_many_inputs",
        )
    for i, text in enumerate(texts):
        if len(text) > limits.max_text_chars:
            raise ApiError(
                413,
                f"{field_name}[{i}] has {len(text)} characters, limit {limits.max_text_chars} (--max-text-chars)",
                field_name,
                "text_too_long",
            )
        if not text.isascii():
            try:  # the tokenizer takes only valid Unicode: a lone surrogate (JSON "\ud800") cannot go in
                text.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise ApiError(
                    400,
                    f"{field_name}[{i}] holds a lone surrogate at character {exc.start}, not valid Unicode",
                    field_name,
                ) from None
    return texts


def parse_dimensions(value: Any, model: Any, field_name: str = "dimensions") -> int:
    if value is None:  # sse_np's one rule: the model's truncate_dim, else its full width
        return int(model.get_embedding_dimension())
    if not is_int(value):
        raise ApiError(400, f"{field_name} is {type_name(value)}, expected an integer in 1..{model.dim}", field_name)
    if not 1 <= value <= int(model.dim):
        raise ApiError(
            400,
            f"{field_name} must be in 1..{model.dim} (this model's width; trained Matryoshka "
            f"sizes are 512, 256, 128, 64, 32 where <= {model.dim}), got {value}",
            field_name,
        )
    return value


def parse_bool(value: Any, field_name: str, default: bool) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ApiError(422, f"{field_name} is {type_name(value)}, expected true or false", field_name)
    return value


def dumps(obj: Any) -> bytes:
    if _orjson is not None:
        return _orjson.dumps(obj, option=_orjson.OPT_SERIALIZE_NUMPY)
    return json.dumps(obj, separators=(",", ":"), default=_json_default).encode()


def _json_default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def json_response(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(dumps(body), status, headers=headers, media_type="application/json")


def b64(vector: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(vector, dtype="<f4").tobytes()).decode("ascii")
