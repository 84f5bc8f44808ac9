"""The application factory: mounts each domain's router under /v1."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, FastAPI
from sqlalchemy.engine import Engine

from neocloud import __version__
from neocloud.api import health, metrics, problems
from neocloud.api.idempotency import IdempotencyMiddleware
from neocloud.api.schemas import Problem, problem_responses
from neocloud.auth import service as auth_service
from neocloud.auth.router import router as auth_router
from neocloud.billing.report_router import router as reports_router
from neocloud.billing.router import router as billing_router
from neocloud.capacity.router import router as capacity_router
from neocloud.config import Settings
from neocloud.contracts.batching import BookingQueues
from neocloud.contracts.router import router as contracts_router
from neocloud.db.engine import make_engine, make_sessionmaker, transaction
from neocloud.engines import loop as engines_loop
from neocloud.engines.kueue.router import router as kueue_router
from neocloud.engines.router import router as engines_router
from neocloud.fleet.router import router as fleet_router
from neocloud.metering import loop as metering_loop
from neocloud.metering.export_router import router as usage_export_router
from neocloud.metering.rollup_router import router as rollup_router
from neocloud.metering.router import router as metering_router
from neocloud.placement import loop as placement_loop
from neocloud.placement.job_router import router as jobs_router
from neocloud.placement.router import router as placement_router
from neocloud.planning import runs as plan_runs
from neocloud.planning.limits_router import router as limits_router
from neocloud.planning.plan_router import router as plans_router
from neocloud.tenants.router import router as tenants_router
from neocloud.web import router as web

DESCRIPTION = """The control plane of a GPU neocloud: fleet inventory, capacity, contracts,
placement, metering and billing. Authenticate with `Authorization: Bearer <token>`.
Errors are `application/problem+json`. Lists are paginated with `limit` and `cursor`."""


def api_router() -> APIRouter:
    v1 = APIRouter(prefix="/v1", responses=problem_responses(400, 401, 403, 404, 409, 422))
    for router in (
        tenants_router,
        auth_router,
        fleet_router,
        contracts_router,
        capacity_router,
        placement_router,
        jobs_router,
        metering_router,
        rollup_router,
        usage_export_router,
        billing_router,
        kueue_router,
        engines_router,
        reports_router,
        web.router,
        limits_router,
        plans_router,
    ):
        v1.include_router(router)
    return v1


def create_app(settings: Settings | None = None, *, engine: Engine | None = None) -> FastAPI:
    settings = settings or Settings.from_env()
    engine = engine or make_engine(settings.db_url)
    factory = make_sessionmaker(engine)
    if settings.bootstrap_token:
        with transaction(factory) as session:
            auth_service.bootstrap_admin(session, settings.bootstrap_token)

    planner = (
        plan_runs.PlanWorker(factory, settings.plan_interval_s)
        if settings.plan_interval_s > 0
        else None
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        loops = [
            asyncio.create_task(run(factory, interval))
            for run, interval in (
                (placement_loop.run, settings.placement_interval_s),
                (metering_loop.run, settings.rollup_interval_s),
                (engines_loop.run, settings.engine_interval_s),
            )
            if interval > 0
        ]
        if planner is not None:
            planner.start()
        yield
        if planner is not None:
            await asyncio.to_thread(planner.stop)
        for task in loops:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app = FastAPI(title="neocloud", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    app.state.engine = engine
    app.state.sessionmaker = factory
    app.state.bookings = BookingQueues()
    app.state.settings = settings
    app.state.planner = planner
    problems.install(app)
    metrics.install(app)
    app.add_middleware(IdempotencyMiddleware)
    app.include_router(health.router)
    app.include_router(api_router())
    _register_problem_schema(app)
    web.mount(app)
    return app


def _register_problem_schema(app: FastAPI) -> None:
    """Put the Problem schema into the OpenAPI components the error responses point at."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = build()
            components = spec.setdefault("components", {}).setdefault("schemas", {})
            problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(problem.pop("$defs", {}))
            components["Problem"] = problem
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
