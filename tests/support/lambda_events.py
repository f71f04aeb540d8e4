"""Real-shaped API Gateway events and a Lambda context, for invoking the handler in-process.

Shapes follow what API Gateway sends: HTTP API payload 2.0 (rawPath carries a
named stage) and REST API payload 1.0 (path without the stage, multiValue
headers, requestContext.path with it).
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass


@dataclass
class LambdaContext:
    function_name: str = "edenai-gateway"
    function_version: str = "$LATEST"
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:edenai-gateway"
    memory_limit_in_mb: int = 1024
    aws_request_id: str = ""
    log_group_name: str = "/aws/lambda/edenai-gateway"
    log_stream_name: str = "2026/11/25/[$LATEST]abcdef"
    remaining_ms: int = 29_000  # at the start of the invocation

    def __post_init__(self) -> None:
        self.aws_request_id = self.aws_request_id or str(uuid.uuid4())
        self._deadline = time.monotonic() + self.remaining_ms / 1000

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _body(body, base64_encode: bool) -> tuple[str | None, bool]:
    if body is None:
        return None, False
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    if base64_encode:
        return base64.b64encode(raw).decode(), True
    return raw.decode(), False


def http_api_event(method: str, path: str, *, body=None, headers=None, stage: str = "$default",
                   query: str = "", base64_body: bool = False) -> dict:
    raw_path = path if stage == "$default" else f"/{stage}{path}"
    encoded, is_b64 = _body(body, base64_body)
    all_headers = {"content-type": "application/json", "host": "abc123.execute-api.us-east-1.amazonaws.com",
                   "x-forwarded-proto": "https", "x-forwarded-port": "443", **(headers or {})}
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": raw_path,
        "rawQueryString": query,
        "headers": all_headers,
        "requestContext": {
            "accountId": "123456789012", "apiId": "abc123", "domainName": all_headers["host"],
            "domainPrefix": "abc123",
            "http": {"method": method, "path": raw_path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.7",
                     "userAgent": "test"},
            "requestId": "Jd9sQgk1IAMEVxw=", "routeKey": "$default", "stage": stage,
            "time": "25/Nov/2026:12:00:00 +0000", "timeEpoch": 1795608000000,
        },
        "body": encoded,
        "isBase64Encoded": is_b64,
    }


def rest_api_event(method: str, path: str, *, body=None, headers=None, stage: str = "prod",
                   base64_body: bool = False) -> dict:
    encoded, is_b64 = _body(body, base64_body)
    all_headers = {"Content-Type": "application/json", "Host": "abc123.execute-api.us-east-1.amazonaws.com",
                   "X-Forwarded-Proto": "https", **(headers or {})}
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": all_headers,
        "multiValueHeaders": {name: [value] for name, value in all_headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": {"proxy": path.lstrip("/")},
        "stageVariables": None,
        "requestContext": {
            "accountId": "123456789012", "apiId": "abc123", "httpMethod": method,
            "identity": {"sourceIp": "203.0.113.7", "userAgent": "test"},
            "path": f"/{stage}{path}", "protocol": "HTTP/1.1", "requestId": str(uuid.uuid4()),
            "resourcePath": "/{proxy+}", "stage": stage,
        },
        "body": encoded,
        "isBase64Encoded": is_b64,
    }
