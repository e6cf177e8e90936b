"""The FastAPI application: ``create_app(settings)`` builds it; the lifespan opens the
store (migrating it to the newest schema) and loads the decider once."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import sys
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.audit import audit_request
from serving.dependencies import ApiContext, DecisionServices, MetricsDep
from serving.keys import KeyRegistry
from serving.metrics import Metrics
from serving.microbatch import MicroBatcher
from serving.model_loader import Loader, ModelHolder, load_decider
from serving.rate_limit import TokenBuckets
from serving.routes import answer_with_json, ops, v1
from serving.settings import Settings, get_settings
from serving.store.db import make_engine, migrate, ping
from serving.store.decision_writer import DecisionWriter
from serving.store.health import StoreHealth
from serving.store.writes import record_decisions
from serving.timeouts import RequestTimeoutMiddleware
from serving.webhooks.routes import webhooks
from training.api.errors import ApiError
from training.api.schemas import BatchRequest, ErrorBody, OutcomesRequest, RecommendationRequest
from training.policy.fallback import FallbackDecider

logger = logging.getLogger(__name__)
API_VERSION = "1.0.0"
REQUEST_SCHEMAS = (RecommendationRequest, BatchRequest, OutcomesRequest)


class MetricsMiddleware:
    """Counts and times every request by route template (not raw path) and status, and
    writes the audit record of key use (:func:`serving.audit.audit_request`)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            self.metrics.observe_request(
                getattr(route, "path", "unmatched"),
                scope["method"],
                status,
                time.perf_counter() - start,
            )
            audit_request(scope, status)


def _error_response(
    status: int, body: ErrorBody, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, error: ApiError) -> JSONResponse:
        return _error_response(error.status, error.body, error.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0] if error.errors() else {"loc": (), "msg": "invalid request"}
        field = ".".join(str(p) for p in first["loc"]) or None
        return _error_response(
            422, ErrorBody(code="invalid_value", message=f"{field}: {first['msg']}", field=field)
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, error: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed"}
        code = codes.get(error.status_code, "http_error")
        return _error_response(
            error.status_code,
            ErrorBody(code=code, message=str(error.detail)),
            getattr(error, "headers", None),
        )

    @app.exception_handler(Exception)
    async def internal_error(_: Request, error: Exception) -> JSONResponse:
        # the request body is never logged: it may hold personal data
        logger.error("internal error: %s", type(error).__name__, exc_info=error)
        return _error_response(
            500,
            ErrorBody(
                code="internal_error", message="internal error; the request was not completed"
            ),
        )


def _openapi(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """The schema with the request models (read by hand after auth) as components."""

    def build() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in REQUEST_SCHEMAS:
            json_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, definition in json_schema.pop("$defs", {}).items():
                components.setdefault(name, definition)
            components[model.__name__] = json_schema
        app.openapi_schema = schema
        return schema

    return build


async def _periodic_reload(holder: ModelHolder, metrics: Metrics, seconds: float) -> None:
    while True:
        await asyncio.sleep(seconds)
        ok = await run_in_threadpool(holder.reload)
        metrics.reloads.labels("ok" if ok else "failed").inc()
        metrics.model_fallback.set(int(holder.current.decider.fallback))


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    metrics: Metrics = app.state.metrics
    holder: ModelHolder = app.state.holder
    engine = make_engine(settings.database_url)
    await run_in_threadpool(migrate, engine)
    app.state.engine = engine
    keys = app.state.keys = KeyRegistry(
        settings.key_hashes(), engine, settings.api_key_cache_seconds
    )
    await run_in_threadpool(keys.refresh)
    if keys.count == 0:
        raise RuntimeError(
            "no API keys configured: create one with `smartretry keys create --scopes ...`, "
            "or set SMARTRETRY_API_KEYS (comma-separated) or SMARTRETRY_API_KEYS_FILE "
            "(one 'sha256:<hex>' per line)"
        )
    health: StoreHealth = app.state.store_health
    # the decision writer: stores decisions after the answer (write-behind) and, with
    # write-behind off, those answered while the store was unreachable
    writer = app.state.decision_writer = DecisionWriter(
        functools.partial(record_decisions, engine),
        on_dropped=metrics.decisions_dropped.inc,
        store_up=functools.partial(ping, engine),
        health=health,
    )
    metrics.decisions_pending.set_function(lambda: writer.pending)
    writer.start()
    services = app.state.decision_services = DecisionServices(
        holder, engine, writer, settings.write_behind(), health, metrics
    )
    await run_in_threadpool(holder.load)
    metrics.model_fallback.set(int(holder.current.decider.fallback))
    task = None
    if settings.reload_interval_seconds > 0:
        task = asyncio.create_task(
            _periodic_reload(holder, metrics, settings.reload_interval_seconds)
        )
    batcher = app.state.batcher = None
    if settings.microbatch_max_items > 1:
        batcher = app.state.batcher = MicroBatcher(
            lambda items: answer_with_json(services, items, ""),
            settings.microbatch_max_items,
            settings.microbatch_wait_ms / 1000,
        )
        batcher.start()
    app.state.api_context = ApiContext(settings, services, batcher)
    switch_interval = sys.getswitchinterval()  # the process's: restored at shutdown
    sys.setswitchinterval(settings.switch_interval_ms / 1000)
    try:
        yield
    finally:
        if batcher is not None:
            await batcher.stop()
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await run_in_threadpool(writer.close)
        engine.dispose()
        sys.setswitchinterval(switch_interval)


def create_app(
    settings: Settings | None = None,
    *,
    loader: Loader | None = None,
) -> FastAPI:
    """The app; ``settings`` default to the environment (``SMARTRETRY_*``); ``loader``
    defaults to :func:`serving.model_loader.load_decider` with the configured threads."""
    settings = settings if settings is not None else get_settings()
    if loader is None:
        loader = functools.partial(
            load_decider,
            threads=settings.scoring_threads,
            quiet_hours=settings.quiet_hours_override(),
            warm_up=settings.model_warm_up,
        )
    app = FastAPI(
        title="smartretry",
        version=API_VERSION,
        description="When to retry failed recurring payments and which dunning message to send. "
        "API contract v1; see docs/api.md.",
        lifespan=_lifespan,
    )
    app.state.settings = settings
    # app.state.keys (serving.keys.KeyRegistry): set by the lifespan, it reads the store
    app.state.rate_limiter = (
        TokenBuckets(settings.rate_limit_per_second, settings.rate_limit_burst)
        if settings.rate_limit_per_second > 0
        else None
    )
    app.state.store_health = StoreHealth()
    app.state.metrics = Metrics()
    fallback = FallbackDecider(quiet_hours=settings.quiet_hours_override())
    app.state.holder = ModelHolder(settings.model, fallback, loader)
    app.state.batcher = None  # set by the lifespan (serving.microbatch)
    app.state.decision_writer = None  # set by the lifespan (serving.store.decision_writer)
    # app.state.engine and .decision_services: set by the lifespan; serving.dependencies
    # gives them (and the rest of app.state) to the routes, typed
    app.add_middleware(RequestTimeoutMiddleware, seconds=settings.request_timeout_seconds)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    _install_error_handlers(app)
    app.include_router(v1)
    app.include_router(ops)
    app.include_router(webhooks)

    @app.get("/metrics", tags=["operations"], response_class=PlainTextResponse)
    def metrics(app_metrics: MetricsDep) -> PlainTextResponse:
        """Prometheus text format."""
        return PlainTextResponse(
            generate_latest(app_metrics.registry), media_type=CONTENT_TYPE_LATEST
        )

    app.openapi = _openapi(app)  # type: ignore[method-assign]
    return app
