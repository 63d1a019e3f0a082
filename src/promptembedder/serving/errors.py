"""Errors as the OpenAI API gives them: a 4xx with ``{"error": {"message", "type", "param", "code"}}``.

Every bad request is answered here and the server keeps serving; only a genuine failure of the model
itself is a 500 (``server_error``).
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger(__name__)

INVALID_REQUEST = "invalid_request_error"


class APIError(Exception):
    """A request the server refuses, with the status and OpenAI-style body to answer it with."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = INVALID_REQUEST,
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def response(self) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if self.status == 401 else None
        return JSONResponse(self.body(), status_code=self.status, headers=headers)


def _validation_error(err: RequestValidationError) -> APIError:
    """The first pydantic error, said as OpenAI says it: which parameter, and what is wrong with it."""
    first = err.errors()[0]
    kind, loc = first.get("type", ""), [str(part) for part in first.get("loc", ()) if part != "body"]
    if kind == "json_invalid":
        return APIError(
            400,
            "We could not parse the JSON body of your request: send valid JSON with Content-Type: application/json.",
            code="invalid_json",
        )
    if not loc or kind == "model_attributes_type":
        return APIError(400, 'The request body must be a JSON object, e.g. {"input": "...", "model": "..."}.')
    param = loc[0] + "".join(f"[{part}]" for part in loc[1:])
    if kind == "missing":
        return APIError(400, f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter")
    if kind == "extra_forbidden":
        return APIError(400, f"Unrecognized request argument supplied: {param}", param=param, code="unknown_parameter")
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    return APIError(400, f"Invalid value for '{param}': {message}", param=param, code="invalid_value")


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def _api_error(request: Request, err: APIError) -> JSONResponse:
        return err.response()

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, err: RequestValidationError) -> JSONResponse:
        return _validation_error(err).response()

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, err: StarletteHTTPException) -> JSONResponse:
        if err.status_code == 404:
            path = request.url.path
            message = f"Unknown request URL: {request.method} {path}. See GET /v1/models and POST /v1/embeddings."
        elif err.status_code == 405:
            message = f"Method {request.method} is not allowed on {request.url.path}."
        else:
            message = str(err.detail)
        return APIError(err.status_code, message).response()

    @app.exception_handler(Exception)
    async def _crash(request: Request, err: Exception) -> JSONResponse:
        logger.exception("request failed inside the server")
        return APIError(500, f"The server failed on this request: {err}", type="server_error").response()


class BodyLimit:
    """ASGI middleware: refuse a request body over ``max_bytes`` with a 413 before anything parses it.

    The body is read here in full (it is needed whole anyway) and handed on unchanged.
    """

    def __init__(self, app, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(int(declared), scope, receive, send)
            return
        chunks, total, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            total += len(chunk)
            if total > self.max_bytes:
                await self._refuse(total, scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, size: int, scope, receive, send) -> None:
        error = APIError(
            413,
            f"The request body is at least {size} bytes, over this server's limit of {self.max_bytes}: send fewer "
            "or shorter texts per request (or start the server with a larger --max-body-bytes).",
            code="request_too_large",
        )
        await error.response()(scope, receive, send)
