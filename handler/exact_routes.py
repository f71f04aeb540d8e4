"""FastAPI, with its hot routes answered ahead of its per-request layers.

A request FastAPI routes passes, before its endpoint runs: FastAPI's OpenTelemetry
check (the tracer, meter and logger providers read from OpenTelemetry's globals),
Starlette's exception middleware, FastAPI's exit-stack middleware, a match against
every route, and FastAPI's request handler (dependencies solved, the query string
parsed, two exit stacks): about a tenth of the gateway's CPU per request on
`POST /v3/v1/messages` in the deployed streaming mode (README: CPU per request).

A route named to `answer_first` is found by one dict lookup on its method and
exact path, and its endpoint runs inside the same user middlewares (request id,
framing, telemetry) and the same 500 handler as every other request, with the
app's own exception handlers for what the endpoint raises. It stays a FastAPI
route: the router still documents it in /openapi.json and answers its other
methods (405) and its neighbours (404). FastAPI's own OpenTelemetry spans do not
cover it (the gateway's telemetry is its log line and metrics, observe/).
"""

from __future__ import annotations

import inspect
from typing import Any, Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.responses import Response

Endpoint = Callable[[Request], Awaitable[Response]]


class ExactRoutesApp(FastAPI):
    """A FastAPI app whose `answer_first` routes skip the router and FastAPI's request handler."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._first: dict[tuple[str, str], Endpoint] = {}
        self._first_stack = None

    def answer_first(self, *endpoints: Endpoint) -> None:
        """Answer the routes these endpoints serve ahead of the router. Each must take only the
        Request and return a Response: nothing of FastAPI's request handler is missed then."""
        if self.max_body_size is not None:
            raise ValueError("an app-wide max_body_size is enforced only on routed requests")
        routes = [r for r in self.routes if isinstance(r, APIRoute) and r.endpoint in endpoints]
        if {r.endpoint for r in routes} != set(endpoints):
            raise ValueError("answer_first takes the endpoints of routes already added")
        for route in routes:
            dependant = route.dependant
            if (route.param_convertors or dependant.path_params or dependant.query_params
                    or dependant.header_params or dependant.cookie_params or dependant.body_params
                    or dependant.dependencies or not inspect.iscoroutinefunction(route.endpoint)):
                raise ValueError(f"{route.path}: only a coroutine taking the Request is answered first")
            for method in route.methods:
                self._first[(method, route.path)] = route.endpoint
        self._first_stack = None

    def add_middleware(self, middleware_class, *args: Any, **kwargs: Any) -> None:
        if getattr(self, "_first_stack", None) is not None:  # a first request built it: too late, as Starlette's
            raise RuntimeError("Cannot add middleware after an application has started")
        super().add_middleware(middleware_class, *args, **kwargs)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and self._first and not scope.get("root_path") and not self.root_path:
            endpoint = self._first.get((scope["method"], scope["path"]))
            if endpoint is not None:
                scope["app"] = self
                scope["endpoint"] = endpoint
                if self._first_stack is None:
                    self._first_stack = self._build_first_stack()
                await self._first_stack(scope, receive, send)
                return
        await super().__call__(scope, receive, send)

    def _build_first_stack(self):
        """Starlette's stack (build_middleware_stack) with the endpoint where its router is."""
        error_handler, handlers = None, {}
        for key, handler in self.exception_handlers.items():
            if key in (500, Exception):
                error_handler = handler
            else:
                handlers[key] = handler
        app = _Answer(handlers)
        for cls, args, kwargs in reversed([Middleware(ServerErrorMiddleware, handler=error_handler, debug=self.debug),
                                           *self.user_middleware]):
            app = cls(app, *args, **kwargs)
        return app


class _Answer:
    """The endpoint's response, or its exception's handler's, as Starlette's routed request gets
    them (starlette/_exception_handler.py): a handler found by the exception's class (an
    HTTPException's status first); one without a handler goes on up to ServerErrorMiddleware."""

    def __init__(self, handlers: dict) -> None:
        self._by_class = {key: value for key, value in handlers.items() if isinstance(key, type)}
        self._by_status = {key: value for key, value in handlers.items() if isinstance(key, int)}

    async def __call__(self, scope, receive, send) -> None:
        request = Request(scope, receive, send)
        try:
            response = await scope["endpoint"](request)
        except Exception as exc:
            handler = self._handler(exc)
            if handler is None:
                raise
            if inspect.iscoroutinefunction(handler):
                response = await handler(request, exc)
            else:
                response = await run_in_threadpool(handler, request, exc)
            exc.__traceback__ = None  # as Starlette: a reused exception would gather every request's frames
            if response is None:
                return
        await response(scope, receive, send)

    def _handler(self, exc: Exception):
        if isinstance(exc, HTTPException) and exc.status_code in self._by_status:
            return self._by_status[exc.status_code]
        for cls in type(exc).__mro__:
            if cls in self._by_class:
                return self._by_class[cls]
        return None
