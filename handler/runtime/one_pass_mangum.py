"""Mangum for the buffered handler: one pass of the event loop per invocation.

Stock Mangum runs the app in one `run_until_complete`, and the handler then
ran the gateway's drain in another: each start and stop of the loop costs
about as much CPU as the rest of the adapter. Here the drain runs in the
same pass, once the app's response is complete, and the handler builds the
ASGI scope once (Mangum's HTTP API handler builds it a second time, only to
read the event's version when it assembles the proxy response).

Mangum also logged an access line at INFO for each response ("POST /path
200", logger `mangum.http`): with the function's logs in JSON, Lambda's
default application log level is INFO, so that was a second log line a
request beside the gateway's own, and about 40 µs of CPU. Its log of an app
that fails stays.

Everything else is Mangum's own: the handler it infers for the event, the
scope, the receive/send cycle and its 500 for an app that fails, the proxy
response (headers, cookies, base64 or text body).
"""

from __future__ import annotations

import asyncio
import logging
from functools import cached_property
from typing import Any, Awaitable, Callable

from mangum import Mangum
from mangum.handlers import ALB, HTTPGateway
from mangum.protocols import HTTPCycle
from mangum.types import ASGI, LambdaConfig, LambdaContext, LambdaEvent, Response, Scope


class _HTTPGatewayScopedOnce(HTTPGateway):
    """Mangum's HTTP API handler (payload 2.0 and 1.0), its scope built once per event."""

    @classmethod
    def infer(cls, event: LambdaEvent, context: LambdaContext, config: LambdaConfig) -> bool:
        # Custom handlers are asked before Mangum's own, among which ALB comes before HTTPGateway:
        # an event ALB would take is left to it.
        return HTTPGateway.infer(event, context, config) and not ALB.infer(event, context, config)

    @cached_property
    def scope(self) -> Scope:
        return super().scope


class _ErrorsOnly:
    """Mangum's HTTP cycle logger (`mangum.http`) less its access line: the gateway writes one
    line a request itself."""

    def __init__(self, logger: logging.Logger) -> None:
        self.exception = logger.exception

    def info(self, *args, **kwargs) -> None:
        pass


_CYCLE_LOGGER = _ErrorsOnly(logging.getLogger("mangum.http"))


class _CycleThen(HTTPCycle):
    """Mangum's HTTP cycle, then `after()` in the same run of the loop.

    The app's failures stay Mangum's (logged, a 500 when nothing was sent yet);
    what `after()` raises leaves the call, as it did from the handler's own run."""

    def __init__(self, scope: Scope, body: bytes, after: Callable[[], Awaitable[None]]) -> None:
        super().__init__(scope, body)
        self.logger = _CYCLE_LOGGER
        self._after = after

    def __call__(self, app: ASGI) -> Response:
        asyncio.get_event_loop().run_until_complete(self._run_then_after(app))
        return {"status": self.status, "headers": self.headers, "body": self.body}

    async def _run_then_after(self, app: ASGI) -> None:
        await self.run(app)
        await self._after()


class OnePassMangum(Mangum):
    """`Mangum(app, lifespan="off")` that awaits `after()` once each response is complete."""

    def __init__(self, app: ASGI, *, after: Callable[[], Awaitable[None]]) -> None:
        super().__init__(app, lifespan="off", custom_handlers=[_HTTPGatewayScopedOnce])
        self._after = after

    def __call__(self, event: LambdaEvent, context: LambdaContext) -> dict[str, Any]:
        handler = self.infer(event, context)
        return handler(_CycleThen(handler.scope, handler.body, self._after)(self.app))
