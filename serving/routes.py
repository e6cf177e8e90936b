"""HTTP routes: parse, call a plain function, answer. The work lives in the functions below
the routers (and in :mod:`training.api.service`), which run in the thread pool because they
are CPU work (pandas) and blocking database writes."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ValidationError
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from serving.body import read_json_object
from serving.dependencies import (
    ApiContextDep,
    DecisionServices,
    DecisionServicesDep,
    EngineDep,
    HolderDep,
    MetricsDep,
    SettingsDep,
    StoreHealthDep,
)
from serving.metrics import Metrics
from serving.model_loader import ModelHolder
from serving.security import AdminScope, AnyKey, OutcomesScope, RecommendScope
from serving.store.db import ping
from serving.store.health import UNREACHABLE_ERRORS, StoreHealth
from serving.store.writes import (
    RequestLookups,
    record_decisions,
    record_outcomes,
    request_lookups,
)
from training.api.errors import ApiError, from_validation_error
from training.api.schemas import (
    BatchResponse,
    ErrorBody,
    Health,
    ItemError,
    ModelInfo,
    OutcomesRequest,
    OutcomesResponse,
    Readiness,
    RecommendationRequest,
    RecommendationResponse,
)
from training.api.sensitive import scan
from training.api.service import (
    Result,
    customer_knowledge,
    customers_to_look_up,
    recommend,
    validate_item,
)

logger = logging.getLogger(__name__)
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in {
        400: "body is not JSON",
        401: "missing or invalid API key",
        403: "the API key lacks the route's scope",
        413: "body larger than the limit",
        422: "invalid request (code and field name what)",
        429: "the API key is over its rate limit (Retry-After: seconds)",
        503: "store unavailable (Retry-After: seconds)",
    }.items()
}


def _body(schema: str) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
        }
    }


v1 = APIRouter(prefix="/v1", responses=ERRORS)
ops = APIRouter()


@v1.post(
    "/recommendations",
    response_model=RecommendationResponse,
    tags=["recommendations"],
    dependencies=[RecommendScope],
    openapi_extra=_body("RecommendationRequest"),
)
async def post_recommendation(request: Request, api: ApiContextDep) -> Response:
    """Retry times and dunning messages for one failed charge."""
    body = await read_json_object(request, api.settings.max_body_bytes)
    # the card-data scan and validation run with the decision (validate_item), once
    result: Result
    if api.batcher is not None:  # decided together with the requests arriving meanwhile
        result, text = await api.batcher.submit(body)
    else:
        [(result, text)] = await run_in_threadpool(answer_with_json, api.services, [body], "")
    if isinstance(result, ItemError):
        raise ApiError(422, result.error.code, result.error.message, result.error.field)
    return _json_bytes(text.encode())


@v1.post(
    "/recommendations/batch",
    response_model=BatchResponse,
    tags=["recommendations"],
    dependencies=[RecommendScope],
    openapi_extra=_body("BatchRequest"),
)
async def post_batch(request: Request, api: ApiContextDep) -> Response:
    """Many failed charges at once; a bad item gets a per-item error, the rest are answered."""
    body = await read_json_object(request, api.settings.max_body_bytes)
    content = await run_in_threadpool(
        batch_answer, api.services, body, api.settings.max_batch_items
    )
    return _json_bytes(content)


@v1.post(
    "/outcomes",
    response_model=OutcomesResponse,
    tags=["outcomes"],
    dependencies=[OutcomesScope],
    openapi_extra=_body("OutcomesRequest"),
)
async def post_outcomes(request: Request, api: ApiContextDep) -> Response:
    """Report what happened (attempts, messages sent/opened/clicked); idempotent by event_id.
    While the store is unreachable: 503 with ``Retry-After``, nothing stored."""
    settings, services = api.settings, api.services
    body = await read_json_object(request, settings.max_body_bytes)
    stored = await run_in_threadpool(
        store_outcomes,
        services.engine,
        services.metrics,
        body,
        settings.max_outcome_events,
        services.health,
        settings.outcomes_retry_after_seconds,
    )
    return _json(stored)


@v1.get("/model", response_model=ModelInfo, tags=["model"], dependencies=[AnyKey])
def get_model(holder: HolderDep) -> ModelInfo:
    """The decider answering now: name, version, training data period, evaluation figures."""
    return model_info(holder)


@v1.post(
    "/admin/reload",
    response_model=ModelInfo,
    tags=["model"],
    dependencies=[AdminScope],
    responses={409: {"model": ErrorBody}},
)
async def post_reload(settings: SettingsDep, holder: HolderDep, metrics: MetricsDep) -> ModelInfo:
    """Load the configured model again and swap it in; on failure the current one stays."""
    if not settings.allow_reload:
        raise ApiError(409, "reload_disabled", "reload is disabled (SMARTRETRY_ALLOW_RELOAD)")
    ok = await run_in_threadpool(holder.reload)
    metrics.reloads.labels("ok" if ok else "failed").inc()
    metrics.model_fallback.set(int(holder.current.decider.fallback))
    if not ok:
        raise ApiError(
            503,
            "reload_failed",
            f"reload failed, still answering with {holder.current.decider.model_version}: "
            f"{holder.last_error}",
        )
    return model_info(holder)


@ops.get("/healthz", response_model=Health, tags=["operations"])
def healthz(holder: HolderDep, health: StoreHealthDep, services: DecisionServicesDep) -> Health:
    """Liveness: the process answers (200 even when a part is down). Also says which
    part is down as last seen, without waiting for the store: ``store`` is
    ``unreachable`` from a failed store access until the next one that works."""
    return Health(
        status="ok",
        store="ok" if health.reachable_as_last_seen else "unreachable",
        decider="fallback" if holder.current.decider.fallback else "model",
        decisions_pending=services.writer.pending,
    )


@ops.get(
    "/readyz", response_model=Readiness, tags=["operations"], responses={503: {"model": Readiness}}
)
def readyz(
    response: Response,
    holder: HolderDep,
    engine: EngineDep,
    health: StoreHealthDep,
    services: DecisionServicesDep,
) -> Readiness:
    """Readiness: a model or the fallback is loaded and the store is reachable (pinged
    now); 503 naming the part that is down otherwise."""
    decider = holder.current.decider
    reachable = ping(engine)
    if reachable:
        health.succeeded()
    else:
        response.status_code = 503
    return Readiness(
        ready=reachable,
        model_loaded=not decider.fallback,
        fallback=decider.fallback,
        model_version=decider.model_version,
        store_reachable=reachable,
        down=[] if reachable else ["store"],
        decisions_pending=services.writer.pending,
    )


def _json(model: BaseModel) -> Response:
    """The model as JSON, serialized once by pydantic; FastAPI's ``response_model`` would
    validate it again first (the route's ``response_model`` still documents it)."""
    return _json_bytes(model.model_dump_json().encode())


def _json_bytes(content: bytes) -> Response:
    return Response(content, media_type="application/json")


def batch_answer(services: DecisionServices, body: dict[str, Any], max_items: int) -> bytes:
    """The batch route's work, in the thread pool so the event loop keeps serving: the
    whole body scanned for card data (one anywhere refuses the batch), items answered,
    the response serialized (about 1 MB for 1,000 items)."""
    scan(body)
    items = _list_field(body, "items", max_items)
    answers = answer_with_json(services, items, "items", scanned=True)
    # BatchResponse(items=...).model_dump_json(), from the items' JSON made once
    return ('{"items":[' + ",".join(text for _, text in answers) + "]}").encode()


def store_outcomes(
    engine: Engine,
    metrics: Metrics,
    body: dict[str, Any],
    max_events: int,
    health: StoreHealth | None = None,
    retry_after: int = 5,
) -> OutcomesResponse:
    """The outcomes route's work, in the thread pool (thousands of events to scan and
    validate, then one durable transaction): committed before the route answers. With
    the store unreachable: 503 (the transaction is all or nothing, so nothing is half
    stored and a retry with the same event ids stores each once)."""
    scan(body)
    _list_field(body, "events", max_events)
    try:
        events = OutcomesRequest.model_validate(body).events
    except ValidationError as error:
        raise ApiError(422, **from_validation_error(error).model_dump()) from None
    unavailable = ApiError(
        503,
        "store_unavailable",
        "the store is unreachable; nothing of this request was stored: send it again "
        "after Retry-After seconds (event ids make the retry safe)",
        None,
        {"Retry-After": str(retry_after)},
    )
    if health is not None and health.down:
        raise unavailable
    try:
        accepted, duplicates = record_outcomes(engine, events)
    except UNREACHABLE_ERRORS as error:
        if health is not None:
            health.failed(error)
        raise unavailable from None
    if health is not None:
        health.succeeded()
    metrics.outcomes.labels("accepted").inc(accepted)
    metrics.outcomes.labels("duplicate").inc(duplicates)
    return OutcomesResponse(accepted=accepted, duplicates=duplicates)


def _list_field(body: dict[str, Any], name: str, limit: int) -> list[Any]:
    value = body.get(name)
    if value is None:
        raise ApiError(422, "missing_field", f"{name}: field required", name)
    if not isinstance(value, list):
        raise ApiError(422, "invalid_type", f"{name}: must be a list", name)
    if not value:
        raise ApiError(422, "too_few_items", f"{name}: at least one is required", name)
    if len(value) > limit:
        raise ApiError(
            422, "too_many_items", f"{name}: at most {limit} per request, got {len(value)}", name
        )
    extra = sorted(set(body) - {name})
    if extra:
        raise ApiError(422, "unknown_field", f"{extra[0]}: unknown field", extra[0])
    return value


Answered = list[tuple[RecommendationRequest, RecommendationResponse, str]]
"""The requests that got a recommendation (not an item error), with it and its JSON."""


def answer(
    services: DecisionServices, items: list[Any], prefix: str, *, scanned: bool = False
) -> list[Result]:
    """Validate, decide, store the decisions (queued for the decision writer, or one
    transaction now when write-behind is off) and count them. ``scanned``: the route has
    already scanned the whole body for card data."""
    return [result for result, _ in answer_with_json(services, items, prefix, scanned=scanned)]


def answer_with_json(
    services: DecisionServices, items: list[Any], prefix: str, *, scanned: bool = False
) -> list[tuple[Result, str]]:
    """:func:`answer`, each result with its JSON (``model_dump_json``): serialized once,
    for the HTTP answer and the stored decision alike."""
    holder = services.holder
    validated = [
        validate_item(item, f"{prefix}[{i}]" if prefix else "", scanned=scanned)
        for i, item in enumerate(items)
    ]
    ids = customers_to_look_up(validated)
    open_requests = [
        v
        for v in validated
        if isinstance(v, RecommendationRequest) and v.payment_method_updated_at is None
    ]
    # queued first: a batch written between the two reads is then seen in the store
    queued = services.writer.queued_customers(ids) if ids else {}
    stored = _read_store(services, open_requests, ids)
    validated = _with_payment_method_updates(validated, stored)
    decider = holder.current.decider  # read once: a reload swaps it for the next request
    known = (
        customer_knowledge(decider, ids, _stored_customers(stored.customers, queued)) if ids else {}
    )
    results = recommend(decider, validated, known_customers=known, fallback=holder.fallback)
    texts = [result.model_dump_json() for result in results]
    answered = _answered(validated, results, texts)
    _store_decisions(services, answered)
    _count_results(services.metrics, answered, results)
    return list(zip(results, texts, strict=True))


def _read_store(
    services: DecisionServices, open_requests: list[RecommendationRequest], ids: list[str]
) -> RequestLookups:
    """One read transaction for the requests: the card updates of those without
    ``payment_method_updated_at`` and the customers in ``ids``. With the store
    unreachable: nothing (degraded: a card update or customer field reported earlier is
    not seen; the requests go on as they came, with the model's history)."""
    if (not open_requests and not ids) or services.health.down:
        return RequestLookups({}, {}, {})
    try:
        return request_lookups(
            services.engine,
            [r.customer_id for r in open_requests],
            [r.invoice_id for r in open_requests],
            ids,
        )
    except UNREACHABLE_ERRORS as error:
        services.health.failed(error)
        logger.warning(
            "store unreachable (%s): card updates and customers not looked up",
            type(error).__name__,
        )
        return RequestLookups({}, {}, {})


def _with_payment_method_updates(
    validated: list[RecommendationRequest | ItemError], stored: RequestLookups
) -> list[RecommendationRequest | ItemError]:
    """Requests without ``payment_method_updated_at`` get the latest stored
    ``payment_method_updated`` event of their customer or invoice, when it is newer than
    the charge's first attempt (docs/api.md)."""
    by_customer, by_invoice = stored.card_updates_by_customer, stored.card_updates_by_invoice
    if not by_customer and not by_invoice:
        return validated
    out: list[RecommendationRequest | ItemError] = []
    for item in validated:
        if isinstance(item, RecommendationRequest) and item.payment_method_updated_at is None:
            known = [by_customer.get(item.customer_id), by_invoice.get(item.invoice_id)]
            latest = max((at for at in known if at is not None), default=None)
            first = min([item.failed_at, *(a.attempted_at for a in item.previous_attempts)])
            if latest is not None and latest > first:
                item = item.model_copy(update={"payment_method_updated_at": latest})
        out.append(item)
    return out


def _stored_customers(
    stored: dict[str, dict[str, Any]], queued: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """What the store knows about the customers, with the fields of requests still queued
    for the decision writer over it (they are newer)."""
    for customer_id, fields in queued.items():
        stored.setdefault(customer_id, {}).update(fields)
    return stored


def _answered(
    validated: list[RecommendationRequest | ItemError], results: list[Result], texts: list[str]
) -> Answered:
    """The (request, response, JSON) of those that got a recommendation (not an item error)."""
    return [
        (request, result, text)
        for request, result, text in zip(validated, results, texts, strict=True)
        if isinstance(request, RecommendationRequest) and isinstance(result, RecommendationResponse)
    ]


def _store_decisions(services: DecisionServices, answered: Answered) -> None:
    """Write-behind: queue them. Otherwise commit them now; with the store unreachable,
    queue them instead (degraded mode: written when the store is back)."""
    requests, responses = [a[0] for a in answered], [a[1] for a in answered]
    texts = [a[2] for a in answered]
    if services.write_behind or services.health.down:
        services.writer.submit(requests, responses, texts)
        return
    try:
        record_decisions(services.engine, requests, responses, texts)
    except UNREACHABLE_ERRORS as error:
        services.health.failed(error)
        logger.warning(
            "store unreachable (%s): %d decisions queued to be written later",
            type(error).__name__,
            len(requests),
        )
        services.writer.submit(requests, responses, texts)
        return
    services.health.succeeded()


def _count_results(metrics: Metrics, answered: Answered, results: list[Result]) -> None:
    """Decisions by decline category (and fallback), item errors by code."""
    metrics.observe_decisions(
        (r.decline.category, r.decline.retryable, r.fallback) for _, r, _ in answered
    )
    for result in results:
        if isinstance(result, ItemError):
            metrics.item_errors.labels(result.error.code).inc()


def model_info(holder: ModelHolder) -> ModelInfo:
    loaded = holder.current
    described = dict(loaded.decider.describe())
    return ModelInfo(
        name=str(described.pop("name", "smart-retry")),
        version=loaded.decider.model_version,
        fallback=loaded.decider.fallback,
        source=loaded.source,
        loaded_at=loaded.loaded_at,
        training_data=described.get("training_data"),
        evaluation=described.get("evaluation"),
        last_reload_error=holder.last_error,
    )
