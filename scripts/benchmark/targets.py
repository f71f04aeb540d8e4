"""The things measured, each started in its own process and described the same way.

A target knows how to start, which processes are its cost (CPU, memory),
and what request it serves: all of them answer the same Messages request
for the same model, routed to the same fake upstream.

    direct   the fake upstream itself, called the way litellm calls it (the baseline); on Bedrock a
             SigV4-signed InvokeModel (Claude) or Converse (Nova), signed once: the fake checks the
             signature, not the clock
    floor    a bare FastAPI app calling litellm.anthropic.messages.acreate (the issue's floor), run in
             LiteLLM Proxy's environment: same litellm, plus what its native Anthropic stream needs
             (soundfile, numpy, backoff, redis), which the gateway's lock no longer has
    gateway  this gateway under uvicorn, metering on (moto), writes after the response, batched
             (group commit): what `scripts/serve` runs, not a deployed mode
    streaming  the streaming deployment: uvicorn as run.sh starts it, GATEWAY_METER_BEFORE_RESPONSE_END on,
             each request an invocation whose usage the extension writes after the response; the Web
             Adapter and the stand-in Runtime API in a process of their own, not counted
    proxy    LiteLLM Proxy 1.110.2, no database, its /v1/messages endpoint
    lambda   the buffered deployment: lambda_handler under the runtime interface client (awslambdaric), its
             extension writing the usage after the answer; API Gateway (v2 events) and the stand-in Runtime
             API in a process of their own, not counted; latency is the invocation's (server-timing)
"""

from __future__ import annotations

import base64
import importlib.metadata
import importlib.util
import json
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable
from urllib.parse import quote

from scripts._package import streaming_uvicorn_argv

from .aws_stack import CREDENTIALS, REGION, AwsStack
from .procs import Process, free_port
from .proxy_env import MASTER_KEY, ensure_proxy_venv, write_config

ALL = ("direct", "floor", "gateway", "proxy", "lambda", "streaming")
LABELS = {"direct": "direct (fake upstream)", "floor": "bare litellm floor",
          "gateway": "gateway (uvicorn, deferred batched write)", "proxy": "LiteLLM Proxy",
          "lambda": "gateway, Lambda buffered mode", "streaming": "gateway, Lambda streaming mode"}
DEPLOYED = ("lambda", "streaming")  # the headline rows: what a deployed gateway does
# What Lambda sets in the function's environment for template.yaml's function (Runtime python3.12,
# LoggingConfig LogFormat JSON, whose application log level is then INFO): awslambdaric polls each
# `next` from a thread of its own under a managed python3.12 or later (lambda_config.py,
# SUPPORTED_THREADPOLLING_ENVS), and sets up logging at that level and format.
LAMBDA_ENVIRONMENT = {"AWS_EXECUTION_ENV": "AWS_Lambda_python3.12", "AWS_LAMBDA_LOG_FORMAT": "JSON",
                      "AWS_LAMBDA_LOG_LEVEL": "INFO"}
PROMPT = "Say hello in a few words, please."
MAX_TOKENS = 64
BEDROCK_BODIES = {  # the same request in InvokeModel's and Converse's words (no model, no stream key)
    "invoke": {"anthropic_version": "bedrock-2023-05-31", "max_tokens": MAX_TOKENS,
               "messages": [{"role": "user", "content": PROMPT}]},
    "converse": {"messages": [{"role": "user", "content": [{"text": PROMPT}]}],
                 "inferenceConfig": {"maxTokens": MAX_TOKENS}},
}
# The base64 the last chunk of an InvokeModel stream starts with: {"type": "message_stop"...
INVOKE_STREAM_END = base64.b64encode(b'{"type": "message_stop"'[:21]).decode()


@dataclass
class Context:
    root: Path
    log_dir: Path
    env: dict[str, str]  # every child's environment: offline litellm, AWS at moto
    upstream_url: str
    model: str  # catalogue id: anthropic/claude-sonnet-4-5 or openai/gpt-4o-mini
    aws: AwsStack | None = None


@dataclass
class Target:
    name: str
    server: Process | None  # whose CPU and memory are the target's (None: direct)
    port: int | None
    path: str
    headers: dict[str, str]
    request_model: str
    dialect: str = "anthropic"  # what the target speaks to us: direct OpenAI is chat completions,
    #                             direct Bedrock "invoke" (Claude) or "converse" (Nova)
    stream_path: str | None = None  # Bedrock names streaming in the path, and signs path and body
    stream_headers: dict[str, str] | None = None
    max_concurrency: int = 1_000
    software: str = ""
    ready_s: float | None = None  # seconds from spawn to answering (direct: the fake, started first)
    aws_calls_url: str | None = None
    settled_url: str | None = None  # answers once the usage writes of every request so far are done
    extra: dict = field(default_factory=dict)
    helpers: list[Process] = field(default_factory=list)  # processes it needs that are not its cost

    @property
    def label(self) -> str:
        return LABELS[self.name]

    def path_for(self, stream: bool) -> str:
        return self.stream_path if stream and self.stream_path else self.path

    def headers_for(self, stream: bool) -> dict[str, str]:
        return self.stream_headers if stream and self.stream_headers else self.headers

    def body(self, stream: bool) -> str:
        if self.dialect in BEDROCK_BODIES:
            return json.dumps(BEDROCK_BODIES[self.dialect])
        document = {"model": self.request_model, "max_tokens": MAX_TOKENS, "stream": stream,
                    "messages": [{"role": "user", "content": PROMPT}]}
        if self.dialect == "openai" and stream:
            document["stream_options"] = {"include_usage": True}
        return json.dumps(document)

    def expect(self, stream: bool) -> str:
        """A marker only a complete answer holds."""
        if self.dialect == "openai":
            return "[DONE]" if stream else '"choices"'
        if self.dialect == "invoke":  # a stream's events are base64 JSON inside event-stream frames
            return INVOKE_STREAM_END if stream else '"content"'
        if self.dialect == "converse":
            return "messageStop" if stream else '"output"'  # the last event's :event-type header
        return "message_stop" if stream else '"content"'

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
        for helper in self.helpers:
            helper.stop()


def package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "-"


def _uvicorn_here() -> str:
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    return f"uvicorn {package_version('uvicorn')} ({loop}, {http}), FastAPI {package_version('fastapi')}"


def _signed(url: str, body: str) -> dict[str, str]:
    """Headers of a request SigV4-signed for Bedrock with the benchmark's credentials."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(method="POST", url=url, data=body.encode(), headers={"content-type": "application/json"})
    SigV4Auth(Credentials(CREDENTIALS["AWS_ACCESS_KEY_ID"], CREDENTIALS["AWS_SECRET_ACCESS_KEY"]), "bedrock",
              REGION).add_auth(request)
    return {name.lower(): value for name, value in request.headers.items()}


def _direct_bedrock(ctx: Context, model: str) -> Target:
    dialect = "invoke" if model.startswith("anthropic.") else "converse"
    action, stream_action = ("invoke", "invoke-with-response-stream") if dialect == "invoke" \
        else ("converse", "converse-stream")
    path, stream_path = (f"/model/{quote(model, safe='')}/{a}" for a in (action, stream_action))
    body = json.dumps(BEDROCK_BODIES[dialect])
    return Target("direct", None, _port(ctx.upstream_url), path, _signed(ctx.upstream_url + path, body),
                  model, dialect=dialect, stream_path=stream_path,
                  stream_headers=_signed(ctx.upstream_url + stream_path, body), software="stdlib ThreadingHTTPServer")


def start_direct(ctx: Context) -> Target:
    provider, model = ctx.model.split("/", 1)
    if provider == "bedrock":
        return _direct_bedrock(ctx, model)
    if provider == "openai":
        return Target("direct", None, _port(ctx.upstream_url), "/v1/chat/completions",
                      {"content-type": "application/json", "authorization": "Bearer sk-openai-bench-fake"},
                      model, dialect="openai", software="stdlib ThreadingHTTPServer")
    return Target("direct", None, _port(ctx.upstream_url), "/v1/messages",
                  {"content-type": "application/json", "x-api-key": "sk-ant-bench-fake",
                   "anthropic-version": "2023-06-01"}, model, software="stdlib ThreadingHTTPServer")


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def _serve(ctx: Context, name: str, argv: list[str], ready_path: str, *, env: dict | None = None,
           timeout: float = 90) -> tuple[Process, int, float]:
    port = free_port()
    started = time.monotonic()
    process = Process(name, [*argv, "--port", str(port)], env=env or ctx.env, cwd=ctx.root, log_dir=ctx.log_dir)
    process.wait_http(f"http://127.0.0.1:{port}{ready_path}", timeout)
    return process, port, time.monotonic() - started


def start_gateway(ctx: Context) -> Target:
    process, port, ready = _serve(ctx, "gateway", [sys.executable, "-m", "scripts.benchmark.gateway_server"],
                                  "/health")
    return Target("gateway", process, port, "/v3/v1/messages",
                  {"content-type": "application/json", "authorization": f"Bearer {ctx.aws.key}"}, ctx.model,
                  software=_uvicorn_here(), ready_s=ready,
                  aws_calls_url=f"http://127.0.0.1:{port}/_bench/aws-calls")


def _versions_in(python: Path) -> tuple[str, str, str, str]:
    """litellm, uvicorn, event loop and HTTP parser of another environment."""
    probe = ("import importlib.metadata as m, importlib.util as u; "
             "print(m.version('litellm'), m.version('uvicorn'), 'uvloop' if u.find_spec('uvloop') else 'asyncio', "
             "'httptools' if u.find_spec('httptools') else 'h11')")
    litellm, uvicorn, loop, http = subprocess.run([str(python), "-c", probe], capture_output=True, text=True,
                                                  check=True).stdout.split()
    return litellm, uvicorn, loop, http


def streaming_function_argv(port: int) -> list[str]:
    """The function process as run.sh starts it (the same uvicorn options), with the AWS-call counter."""
    return [sys.executable, *streaming_uvicorn_argv("scripts.benchmark.streaming_function:app", str(port))]


def start_streaming(ctx: Context) -> Target:
    """Two processes: Lambda's side (the stand-in Runtime API and the Web Adapter) and the function
    (uvicorn as run.sh starts it), whose CPU and memory alone are the target's."""
    started = time.monotonic()
    port, function_port = free_port(), free_port()
    lambda_side = Process("streaming-web-adapter", [sys.executable, "-m", "scripts.benchmark.web_adapter",
                                                    "--port", str(port), "--function-port", str(function_port)],
                          env=ctx.env, cwd=ctx.root, log_dir=ctx.log_dir)
    try:
        runtime_api = lambda_side.first_line(30).removeprefix("runtime-api ")
        env = {**ctx.env, **LAMBDA_ENVIRONMENT, "AWS_LAMBDA_RUNTIME_API": runtime_api,
               "GATEWAY_METER_BEFORE_RESPONSE_END": "true"}
        function = Process("streaming", streaming_function_argv(function_port), env=env, cwd=ctx.root,
                           log_dir=ctx.log_dir)
    except BaseException:
        lambda_side.stop()
        raise
    target = Target("streaming", function, port, "/v3/v1/messages",
                    {"content-type": "application/json", "authorization": f"Bearer {ctx.aws.key}"}, ctx.model,
                    max_concurrency=1, software=_uvicorn_here() + ", run.sh's uvicorn options; the Web Adapter "
                    "and a stand-in Runtime API in a process of their own",
                    aws_calls_url=f"http://127.0.0.1:{port}/_bench/aws-calls",
                    settled_url=f"http://127.0.0.1:{port}/_bench/settled", helpers=[lambda_side])
    def ready() -> None:
        function.wait_http(f"http://127.0.0.1:{function_port}/health", 90)
        lambda_side.wait_http(f"http://127.0.0.1:{port}/health", 30)

    return _lambda_ready(target, started, port, function, ready)


def _lambda_ready(target: Target, started: float, port: int, function: Process, ready: Callable[[], None]) -> Target:
    """A Lambda target once `ready()` has returned and its usage extension is registered (else
    stopped, its processes with it), with the seconds it took from `started`."""
    try:
        ready()
        _check_extension_registered(port, function)
    except BaseException:
        target.stop()
        raise
    target.ready_s = time.monotonic() - started
    return target


def _check_extension_registered(port: int, function: Process) -> None:
    """The function's usage extension registered with Lambda's side (the stand-in Runtime API)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_bench/extensions", timeout=10) as answer:
        extensions = json.load(answer)["extensions"]
    if extensions != ["edenai-gateway-ledger"]:
        raise RuntimeError(f"the usage extension did not register: {extensions}\n{function.log_tail()}")


def start_floor(ctx: Context) -> Target:
    python = ensure_proxy_venv(ctx.root)
    process, port, ready = _serve(
        ctx, "floor", [str(python), "-m", "uvicorn", "scripts.benchmark.floor_app:app", "--host", "127.0.0.1",
                       "--loop", "asyncio", "--http", "h11"],
        "/health", env={**ctx.env, "BENCH_UPSTREAM_URL": ctx.upstream_url})
    litellm, uvicorn, _, _ = _versions_in(python)
    return Target("floor", process, port, "/v1/messages", {"content-type": "application/json"},
                  ctx.model, software=f"litellm {litellm}, uvicorn {uvicorn} (asyncio, h11), {python.parent.parent.name}",
                  ready_s=ready)


def start_proxy(ctx: Context) -> Target:
    python = ensure_proxy_venv(ctx.root)
    config = write_config(ctx.log_dir, ctx.upstream_url, bedrock=ctx.model.startswith("bedrock/"))
    env = {k: v for k, v in ctx.env.items() if k not in ("DATABASE_URL", "AWS_ENDPOINT_URL")}
    env["LITELLM_USE_CHAT_COMPLETIONS_URL_FOR_ANTHROPIC_MESSAGES"] = "true"
    process, port, ready = _serve(
        ctx, "litellm-proxy",
        [str(python.parent / "litellm"), "--config", str(config), "--host", "127.0.0.1", "--num_workers", "1"],
        "/health/liveliness", env=env, timeout=180)
    litellm, uvicorn, loop, http = _versions_in(python)
    return Target("proxy", process, port, "/v1/messages",
                  {"content-type": "application/json", "authorization": f"Bearer {MASTER_KEY}"}, ctx.model,
                  software=f"litellm {litellm}, uvicorn {uvicorn} ({loop}, {http})", ready_s=ready,
                  extra={"litellm": litellm})


BUFFERED_HANDLER = "scripts.benchmark.buffered_function.lambda_handler"


def buffered_function_argv() -> list[str]:
    """The function process as Lambda's Python runtime starts it, on the handler with the AWS-call counter."""
    from tests.support.lambda_runtime_api import runtime_client_argv

    return runtime_client_argv(sys.executable, handler=BUFFERED_HANDLER)


def start_lambda(ctx: Context) -> Target:
    """Two processes: Lambda's side (the stand-in Runtime API and API Gateway) and the function
    (the runtime interface client running lambda_handler), whose CPU and memory alone are the target's."""
    started = time.monotonic()
    port = free_port()
    lambda_side = Process("lambda-api-gateway", [sys.executable, "-m", "scripts.benchmark.api_gateway",
                                                 "--port", str(port)], env=ctx.env, cwd=ctx.root, log_dir=ctx.log_dir)
    try:
        runtime_api = lambda_side.first_line(30).removeprefix("runtime-api ")
        function = Process("lambda", buffered_function_argv(),
                           env={**ctx.env, **LAMBDA_ENVIRONMENT, "AWS_LAMBDA_RUNTIME_API": runtime_api},
                           cwd=ctx.root, log_dir=ctx.log_dir)
    except BaseException:
        lambda_side.stop()
        raise
    target = Target("lambda", function, port, "/v3/v1/messages",
                    {"content-type": "application/json", "authorization": f"Bearer {ctx.aws.key}"}, ctx.model,
                    max_concurrency=1, software=f"Mangum {package_version('mangum')} under awslambdaric "
                    f"{package_version('awslambdaric')}; API Gateway (v2 events) and a stand-in Runtime API in a "
                    "process of their own",
                    aws_calls_url=f"http://127.0.0.1:{port}/_bench/aws-calls",
                    settled_url=f"http://127.0.0.1:{port}/_bench/settled", helpers=[lambda_side])
    return _lambda_ready(target, started, port, function,
                         lambda: function.wait_http(f"http://127.0.0.1:{port}/_bench/ready", 90))


STARTERS = {"direct": start_direct, "floor": start_floor, "gateway": start_gateway, "proxy": start_proxy,
            "lambda": start_lambda, "streaming": start_streaming}
