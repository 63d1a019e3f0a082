"""The OpenAI-compatible embeddings server: ``POST /v1/embeddings``, ``GET /v1/models``, ``/health``, ``/metrics``.

    app = create_app(load_servable("BUNDLE"), ServeConfig())
    uvicorn.run(app, host="127.0.0.1", port=8000)

Requests are checked and tokenised on the event loop, then handed to the one model worker thread
(``serving.worker``), which batches those that arrive together.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import time
from contextlib import asynccontextmanager

import numpy as np
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, field_validator

from promptembedder.serving.bundle import Servable
from promptembedder.serving.config import ServeConfig
from promptembedder.serving.errors import APIError, BodyLimit, install_error_handlers
from promptembedder.serving.metrics import Metrics, RequestMetrics
from promptembedder.serving.service import EmbeddingService, EncodingFormat, InputType
from promptembedder.serving.worker import BatchWorker


class EmbeddingRequest(BaseModel):
    """The OpenAI embeddings request, plus ``instruction`` and ``input_type`` of ours."""

    model_config = ConfigDict(extra="forbid")

    input: list[str] = Field(description="A string or a list of strings to embed.")
    model: StrictStr = Field(description="A task name of this server, or the served model's name (no task).")
    encoding_format: EncodingFormat = EncodingFormat.FLOAT
    dimensions: StrictInt | None = Field(default=None, ge=1, description="Keep the first N dimensions, renormalised.")
    user: StrictStr | None = None
    instruction: StrictStr | None = Field(default=None, description="A task instruction, with model = the model.")
    input_type: InputType = InputType.QUERY

    @field_validator("input", mode="before")
    @classmethod
    def _strings(cls, value: object) -> object:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise ValueError(f"expected a string or a list of strings, got {type(value).__name__}")
        if not value:
            raise ValueError("input is empty: send a string or a non-empty list of strings")
        for i, item in enumerate(value):
            if isinstance(item, (int, list)) and not isinstance(item, bool):
                raise ValueError("token ids are not supported here: send the texts as strings")
            if not isinstance(item, str):
                raise ValueError(f"input[{i}] is a {type(item).__name__}, expected a string")
            if not item:
                raise ValueError(f"input[{i}] is an empty string: send text to embed")
        return value


def _encode(vector: np.ndarray, encoding: EncodingFormat) -> list[float] | str:
    if encoding is EncodingFormat.BASE64:
        return base64.b64encode(np.ascontiguousarray(vector, dtype="<f4").tobytes()).decode("ascii")
    return vector.tolist()


def create_app(servable: Servable, config: ServeConfig | None = None) -> FastAPI:
    """A FastAPI app serving ``servable``; the model worker starts and stops with the app's lifespan."""
    config = config or ServeConfig()
    service = EmbeddingService(servable, config)
    metrics = Metrics()
    created = int(time.time())

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.worker = BatchWorker(
            service.embed,
            max_batch_tokens=config.max_batch_tokens,
            window_s=config.batch_window_ms / 1000,
            on_batch=metrics.on_batch,
        )
        try:
            yield
        finally:
            # The server has stopped taking requests and answered those in flight: nothing is left waiting.
            await asyncio.to_thread(app.state.worker.close)

    app = FastAPI(title="PromptEmbedder", summary="OpenAI-compatible embeddings", lifespan=lifespan)
    install_error_handlers(app)
    app.add_middleware(BodyLimit, max_bytes=config.max_body_bytes)
    app.add_middleware(RequestMetrics, metrics=metrics)  # outermost: 413s are counted too
    app.state.service, app.state.metrics = service, metrics

    def require_key(request: Request) -> None:
        if config.api_key is None:
            return
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if not token:
            raise APIError(
                401,
                "You didn't provide an API key: send it in the header 'Authorization: Bearer KEY'.",
                code="missing_api_key",
            )
        if scheme.lower() != "bearer" or not secrets.compare_digest(token.strip().encode(), config.api_key.encode()):
            raise APIError(401, "Incorrect API key provided.", code="invalid_api_key")

    def model_card(model_id: str) -> dict:
        return {"id": model_id, "object": "model", "created": created, "owned_by": "promptembedder"}

    @app.post("/v1/embeddings", dependencies=[Depends(require_key)])
    async def embeddings(body: EmbeddingRequest) -> JSONResponse:
        texts = body.input
        if len(texts) > config.max_texts_per_request:
            raise APIError(
                400,
                f"input has {len(texts)} strings; this server takes at most {config.max_texts_per_request} per "
                "request: split it into several requests.",
                param="input",
                code="too_many_inputs",
            )
        instruction = service.resolve(body.model, body.instruction, body.input_type)
        if body.dimensions is not None and body.dimensions > service.dimension:
            raise APIError(
                400,
                f"dimensions={body.dimensions} is more than this model's {service.dimension}.",
                param="dimensions",
            )
        tokens = service.count_tokens(texts)
        prefix = service.prefix_tokens(instruction)
        future = app.state.worker.submit(instruction, texts, [n + prefix for n in tokens])
        vectors = await asyncio.wrap_future(future)
        if body.dimensions is not None and body.dimensions < vectors.shape[1]:
            # Matryoshka-style: the leading dimensions, brought back to unit length.
            vectors = vectors[:, : body.dimensions]
            vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        metrics.texts.inc(len(texts))
        metrics.tokens.inc(sum(tokens))
        data = [
            {"object": "embedding", "index": i, "embedding": _encode(vector, body.encoding_format)}
            for i, vector in enumerate(vectors)
        ]
        usage = {"prompt_tokens": sum(tokens), "total_tokens": sum(tokens)}
        return JSONResponse({"object": "list", "data": data, "model": body.model, "usage": usage})

    @app.get("/v1/models", dependencies=[Depends(require_key)])
    async def models() -> dict:
        return {"object": "list", "data": [model_card(m) for m in service.model_ids]}

    @app.get("/v1/models/{model_id}", dependencies=[Depends(require_key)])
    async def model(model_id: str) -> dict:
        if model_id not in service.model_ids:
            service.resolve(model_id, None, InputType.QUERY)  # raises the model_not_found error
        return model_card(model_id)

    @app.get("/health")
    async def health() -> dict:
        worker = getattr(app.state, "worker", None)
        if worker is None or not worker.alive:
            raise APIError(503, "The model worker is not running.", type="server_error")
        return {"status": "ok", "models": service.model_ids, "dimension": service.dimension}

    @app.get("/metrics")
    async def prometheus() -> Response:
        content, media_type = metrics.render()
        return Response(content, media_type=media_type)

    return app
