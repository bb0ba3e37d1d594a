"""`triad serve`: one ASGI app for webhooks (real-time inbound), the data API and health.

FastAPI generates the OpenAPI document from the code; uvicorn serves it.
Feature modules contribute routers; this module only assembles them and owns
the app's lifecycle (the background worker starts and stops with the app).
"""
from __future__ import annotations

import importlib
import logging
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Callable

from fastapi import FastAPI

from hub.context import Context

log = logging.getLogger(__name__)

# modules exposing `router` (a fastapi.APIRouter) and optionally `start(app)` / `stop(app)`
FEATURES = ("hub.webhooks", "hub.api")


READY_WAIT_S = 60.0     # how long start-up waits for the worker to prepare before serving anyway


def create_app(ctx: Context, *, worker: bool = True, on_ready: Callable[[], None] | None = None) -> FastAPI:
    """The app for this config; ``worker`` starts the inbox worker with it (tests may turn it off).
    ``on_ready`` is called once the worker has prepared its mappings and validators (or at once without one),
    before the first request is served."""
    modules = []
    for name in FEATURES:
        try:
            modules.append(importlib.import_module(name))
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            log.info("feature %s not installed", name)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        for m in modules:
            if worker and hasattr(m, "start"):
                m.start(app)
        rt = getattr(app.state, "triad_realtime", None)
        if rt is not None and getattr(rt, "worker", None) is not None:
            # a delivery is taken at once, not after the worker's start-up (great-expectations, the validators)
            from anyio import to_thread
            await to_thread.run_sync(rt.worker.inbox.ready.wait, READY_WAIT_S)
        if on_ready is not None:
            on_ready()
        try:
            yield
        finally:
            for m in reversed(modules):
                if worker and hasattr(m, "stop"):
                    m.stop(app)

    app = FastAPI(title="Triad", version=_version(), lifespan=lifespan, openapi_url="/api/v1/openapi.json",
                  docs_url="/api/v1/docs", redoc_url=None)
    app.state.ctx = ctx
    for m in modules:
        app.include_router(m.router)
    return app


def _version() -> str:
    try:
        from importlib.metadata import version
        return version("triad-hub")
    except Exception:  # running from a source tree without metadata
        return "0"


def serve(ctx: Context, host: str, port: int, **uvicorn_options: Any) -> None:
    """Serve the app until stopped. The socket is bound first, so a port in use is one clear error
    and port 0 (a free port) can be told: the first line on stdout is ``listening on <base url>``."""
    import socket

    import uvicorn

    from hub.errors import UsageError
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except (OSError, OverflowError) as exc:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port}: {getattr(exc, 'strerror', None) or exc}") from None
    sock.listen(2048)    # from now on a client waits in the backlog until the app has started
    bound = sock.getsockname()[1]
    url = f"http://{f'[{host}]' if ':' in host else host}:{bound}"
    # said once the worker is ready: a delivery sent on seeing the line is applied within the second
    app = create_app(ctx, on_ready=lambda: print(f"listening on {url}", flush=True))
    config = uvicorn.Config(app, host=host, port=bound, log_level="warning", **uvicorn_options)
    uvicorn.Server(config).run(sockets=[sock])
