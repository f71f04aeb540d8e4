"""The benchmark's stand-ins for Lambda treat both deployed modes as one execution environment.

An environment takes its next invocation only once every extension asked for
its next event, that is once the usage extension wrote the last request's
usage. The buffered target's API Gateway stand-in always held a request for
that; the streaming target's Web Adapter stand-in now does too, so both
modes' function processes idle before each request as a deployed one does,
and pay the CPU that idle costs (scripts/benchmark/idle_tax.py). The wait is
not the function's: it is named in `server-timing` and taken off the latency.
"""

from __future__ import annotations

import asyncio
import threading
import time

from scripts.benchmark.httpclient import Connection, build_request, timing_seconds
from scripts.benchmark.idle_tax import measure
from scripts.benchmark.web_adapter import adapter
from tests.support.lambda_runtime_api import LambdaRuntimeApi
from tests.support.stack import UvicornThread

WRITE_S = 0.3  # the usage extension's write after each invocation


async def _function(scope, receive, send):
    """The function under uvicorn: answers at once."""
    if scope["type"] == "lifespan":
        await receive()
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await send({"type": "lifespan.shutdown.complete"})
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})


def _slow_writer(api: LambdaRuntimeApi, identifier: str, stop: threading.Event) -> None:
    """An extension that takes WRITE_S for each invocation's usage before it asks for the next."""
    while not stop.is_set():
        api.extension_next(identifier)
        time.sleep(WRITE_S)


def test_the_streaming_stand_in_holds_a_request_until_the_last_invocations_usage_is_written():
    stop = threading.Event()
    with LambdaRuntimeApi() as api:
        identifier = api.register("usage-writer")
        threading.Thread(target=_slow_writer, args=(api, identifier, stop), daemon=True).start()
        function = UvicornThread(_function, http="h11").start()
        web_adapter = UvicornThread(adapter(api, function.url), http="h11").start()
        try:
            async def two_requests():
                connection = Connection("127.0.0.1", web_adapter.port)
                raw = build_request("127.0.0.1", web_adapter.port, "/v3/v1/messages", {}, b"{}")
                first = await connection.request(raw)
                sent = time.perf_counter()
                second = await connection.request(raw)
                connection.close()
                return first, second, time.perf_counter() - sent

            first, second, second_wall_s = asyncio.run(two_requests())
        finally:
            stop.set()
            web_adapter.stop()
            function.stop()
    assert first[0] == second[0] == 200
    assert second_wall_s >= WRITE_S * 0.8, (
        f"the second request was served {second_wall_s:.3f} s after it was sent, while the extension "
        f"still wrote the first one's usage ({WRITE_S} s): one environment does not take it before that")
    assert second[2] < second_wall_s - WRITE_S * 0.5, (
        f"the load generator counted the wait for the last write ({second[2]:.3f} s of {second_wall_s:.3f}) "
        "as the function's latency")


def test_the_wait_named_in_server_timing_is_read_by_name():
    assert timing_seconds("queued;dur=12.5", "queued") == 0.0125
    assert timing_seconds("invocation;dur=3, queued;dur=7", "invocation") == 0.003
    assert timing_seconds("invocation;dur=3", "queued") is None


def test_the_idle_tax_is_measured_as_cpu_per_unit_of_work_with_and_without_an_idle():
    found = measure(idle_ms=5, units=20, rounds=1)
    assert found["idle_ms"] == 5 and found["back_to_back_ms"] > 0 and found["after_idle_ms"] > 0
    assert found["ratio"] == round(found["after_idle_ms"] / found["back_to_back_ms"], 2)
