"""Typed FastAPI dependencies: what a route needs from the app, by type.

The app's objects live on ``app.state`` (set by :func:`serving.app.create_app` and its
lifespan); the functions here are the only readers of it. Each is ``async`` so FastAPI
calls it on the event loop (a plain ``def`` dependency costs a hop to the thread pool per
request), only returns an attribute, and is called at most once per request (FastAPI
caches a dependency within a request). A route takes ``settings: SettingsDep`` and so on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine

from serving.metrics import Metrics
from serving.microbatch import MicroBatcher
from serving.model_loader import ModelHolder
from serving.settings import Settings
from serving.store.decision_writer import DecisionWriter
from serving.store.health import StoreHealth


@dataclass(frozen=True, slots=True)
class DecisionServices:
    """What answering recommendations needs: the decider, the store, the decision writer
    (used for every decision when ``write_behind``, else only for those answered while the
    store is unreachable), the store's health and the metrics. Built once by the lifespan;
    the micro-batcher's handler uses the same one."""

    holder: ModelHolder
    engine: Engine
    writer: DecisionWriter
    write_behind: bool
    health: StoreHealth
    metrics: Metrics


@dataclass(frozen=True, slots=True)
class ApiContext:
    """What the ``/v1`` recommendation and outcome routes need, as one dependency (FastAPI
    solves each dependency of each request, ~15 µs apiece): the settings, the decision
    services and the micro-batcher (``None``: off). Built once by the lifespan."""

    settings: Settings
    services: DecisionServices
    batcher: MicroBatcher | None


async def api_context(request: Request) -> ApiContext:
    context: ApiContext = request.app.state.api_context
    return context


async def app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def app_metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


async def model_holder(request: Request) -> ModelHolder:
    holder: ModelHolder = request.app.state.holder
    return holder


async def store_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


async def store_health(request: Request) -> StoreHealth:
    health: StoreHealth = request.app.state.store_health
    return health


async def micro_batcher(request: Request) -> MicroBatcher | None:
    """``None``: micro-batching is off (``SMARTRETRY_MICROBATCH_MAX_ITEMS`` 1)."""
    batcher: MicroBatcher | None = request.app.state.batcher
    return batcher


async def decision_services(request: Request) -> DecisionServices:
    services: DecisionServices = request.app.state.decision_services
    return services


SettingsDep = Annotated[Settings, Depends(app_settings)]
MetricsDep = Annotated[Metrics, Depends(app_metrics)]
HolderDep = Annotated[ModelHolder, Depends(model_holder)]
EngineDep = Annotated[Engine, Depends(store_engine)]
StoreHealthDep = Annotated[StoreHealth, Depends(store_health)]
BatcherDep = Annotated[MicroBatcher | None, Depends(micro_batcher)]
DecisionServicesDep = Annotated[DecisionServices, Depends(decision_services)]
ApiContextDep = Annotated[ApiContext, Depends(api_context)]
