"""The Lambda artifact scripts/package builds: within budget, exactly the lock,
and, pruned, still everything the gateway loads.

Built twice per session: for Lambda (linux/arm64, Python 3.12), whose size and
contents are checked; and for this machine with the same pruning, which is
run in fresh interpreters that see only the artifact and the standard library
(`python -S`: no site-packages; `-B`: no bytecode written, as /var/task is
read-only): once as the buffered Lambda handler, once as the streaming mode's
run.sh under uvicorn. The AWS side is the session's moto server, the
providers the session's fake upstream.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import re
import socket
import stat
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import httpx
import pytest

from handler import snapstart
from tests.support.lambda_events import http_api_event
from tests.support.stack import new_stack, wait_until_healthy

ROOT = Path(__file__).resolve().parents[1]
COMPROMISED_LITELLM = {"1.82.7", "1.82.8"}
ALLOWED_PTH: frozenset[str] = frozenset()  # the lock's packages ship none; a .pth runs code at start-up
ELF_MACHINE = {"arm64": 0xB7, "x86_64": 0x3E}
MESSAGES = "/v3/v1/messages"
BODY = {"model": "anthropic/claude-sonnet-4-5", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}

pytestmark = pytest.mark.slow


def _load_packager():
    spec = importlib.util.spec_from_file_location("_package", ROOT / "scripts" / "_package.py")
    module = sys.modules.setdefault("_package", importlib.util.module_from_spec(spec))
    spec.loader.exec_module(module)
    return module


packager = _load_packager()


@pytest.fixture(scope="session")
def lambda_artifact(tmp_path_factory):
    """(report, directory, zip) for linux/arm64, Python 3.12: what sam build deploys."""
    base = tmp_path_factory.mktemp("lambda")
    report = packager.build(packager.Target("arm64", "3.12"), base / "lambda", base / "lambda.zip")
    return report, base / "lambda", base / "lambda.zip"


@pytest.fixture(scope="session")
def host_artifact(tmp_path_factory):
    """The same build and pruning for this machine's platform and Python, to run here."""
    out = tmp_path_factory.mktemp("host") / "lambda"
    packager.build(packager.host_target(), out, None)
    return out


def installed(site: Path) -> dict[str, str]:
    """Distribution name (normalized) -> version, from the artifact's METADATA files."""
    found = {}
    for metadata in site.glob("*.dist-info/METADATA"):
        text = metadata.read_text(errors="replace")
        name = re.search(r"^Name: (.+)$", text, re.M).group(1).strip()
        found[re.sub(r"[-_.]+", "-", name).lower()] = re.search(r"^Version: (.+)$", text, re.M).group(1).strip()
    return found


def locked_for(target) -> dict[str, str]:
    pins = (pin.split(" ")[0] for pin, _ in packager.lock_entries(
        packager.requirements_for(target, packager.LOCK.read_text())))
    return {name.lower(): version for name, _, version in (pin.partition("==") for pin in pins)}


# --------------------------------------------------------------------------- what pip is asked for

def test_the_lock_is_read_for_the_target_python_not_the_one_running_the_build():
    lock = packager.LOCK.read_text()
    for_lambda = packager.requirements_for(packager.Target("arm64", "3.12"), lock)
    for_311 = packager.requirements_for(packager.Target("x86_64", "3.11"), lock)
    assert "numpy==2.5.5 \\" in for_lambda and "numpy==2.4.6" not in for_lambda
    assert "numpy==2.4.6 \\" in for_311 and "numpy==2.5.5" not in for_311
    assert "colorama==" not in for_lambda  # sys_platform == 'win32'
    assert ";" not in "".join(pin for pin, _ in packager.lock_entries(for_lambda))
    assert all(text.count("--hash=sha256:") >= 1 for _, text in packager.lock_entries(for_lambda))


# --------------------------------------------------------------------------- the Lambda artifact

def test_the_lambda_artifact_is_within_budget(lambda_artifact):
    report, site, archive = lambda_artifact
    unpacked = sum(p.stat().st_size for p in site.rglob("*") if p.is_file())
    assert unpacked == report.unpacked_bytes
    assert unpacked <= packager.BUDGET_UNPACKED, f"{unpacked / packager.MB:.1f} MB unpacked"
    assert archive.stat().st_size <= packager.BUDGET_ZIPPED, f"{archive.stat().st_size / packager.MB:.1f} MB zipped"
    assert report.installed_bytes - unpacked > 60 * packager.MB  # the pruning did its part


def test_the_lambda_artifact_is_for_python_3_12_on_arm64(lambda_artifact):
    _, site, _ = lambda_artifact
    extensions = [p for p in site.rglob("*.so*") if p.is_file()]
    assert extensions
    for extension in extensions:
        header = extension.read_bytes()[:20]
        assert header[:4] == b"\x7fELF" and int.from_bytes(header[18:20], "little") == ELF_MACHINE["arm64"], extension
        versioned = re.search(r"\.cpython-(\d+)-([a-z0-9_]+)-linux-gnu\.so$", extension.name)
        assert versioned is None or versioned.groups() == ("312", "aarch64"), extension


def test_the_lambda_artifact_holds_exactly_the_locked_packages(lambda_artifact):
    _, site, _ = lambda_artifact
    expected = locked_for(packager.Target("arm64", "3.12"))
    del expected["hf-xet"]  # pruned whole: nothing here downloads from the Hugging Face Hub
    assert installed(site) == expected


def test_the_zip_is_the_directory_with_run_sh_executable(lambda_artifact):
    _, site, archive = lambda_artifact
    with zipfile.ZipFile(archive) as zipped:
        names = {info.filename: info for info in zipped.infolist()}
    assert set(names) == {p.relative_to(site).as_posix() for p in site.rglob("*") if p.is_file()}
    assert stat.S_IMODE(names["run.sh"].external_attr >> 16) == 0o755
    assert "handler/lambda_function.py" in names and "handler/snapstart.py" in names
    assert not any("__pycache__" in name or name.endswith(".pyc") for name in names)


@pytest.mark.parametrize("which", ["lambda", "host"])
def test_no_pth_file_and_no_compromised_litellm(request, which):
    site = request.getfixturevalue("lambda_artifact")[1] if which == "lambda" \
        else request.getfixturevalue("host_artifact")
    assert sorted(p.name for p in site.rglob("*.pth") if p.name not in ALLOWED_PTH) == []
    assert installed(site)["litellm"] not in COMPROMISED_LITELLM


# --------------------------------------------------------------------------- the pruned code, run

DRIVER = r"""
import json, os, sys, sysconfig, types
artifact = os.path.realpath(sys.argv[1])
assert not any("site-packages" in entry for entry in sys.path), sys.path

from handler import lambda_function, snapstart

responses, imported = [], []
for number, event in enumerate(json.load(sys.stdin)):
    if number:
        snapstart.forget_process_state()  # as after a SnapStart restore: the next request builds new clients
    context = types.SimpleNamespace(function_name="gateway", function_version="1", memory_limit_in_mb=1024,
                                    aws_request_id=f"r{number}", get_remaining_time_in_millis=lambda: 29000)
    before = set(sys.modules)
    responses.append(lambda_function.lambda_handler(event, context))
    imported.append(sorted(set(sys.modules) - before))

stdlib = {os.path.realpath(sysconfig.get_paths()[key]) for key in ("stdlib", "platstdlib")}
loaded = {os.path.realpath(m.__file__) for m in list(sys.modules.values()) if getattr(m, "__file__", None)}
print(json.dumps({
    "responses": responses,
    "imported": imported,
    "from_artifact": sorted({os.path.relpath(f, artifact).split(os.sep)[0].split(".")[0]
                             for f in loaded if f.startswith(artifact + os.sep)}),
    "elsewhere": sorted(f for f in loaded if not f.startswith(artifact + os.sep)
                        and not any(f.startswith(d + os.sep) for d in stdlib)),
}))
"""


def isolated_env(stack, endpoint: str, **extra) -> dict[str, str]:
    """Only what the function's environment would hold: its settings and AWS's variables."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "GATEWAY_KEYS_SECRET_ID": stack.settings.keys_secret_id,
        "GATEWAY_PROVIDERS_SECRET_ID": stack.settings.providers_secret_id,
        "GATEWAY_USAGE_TABLE": stack.settings.usage_table,
        "AWS_ENDPOINT_URL": endpoint, "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        **extra,
    }


def body_of(response) -> bytes:
    body = response["body"]
    return base64.b64decode(body) if response.get("isBase64Encoded") else body.encode()


def test_the_pruned_artifact_serves_a_message_and_a_stream_as_the_lambda_handler(host_artifact, moto_endpoint, fake):
    stack = new_stack(fake.url)
    key = stack.add_key(name="artifact")
    events = [http_api_event("POST", MESSAGES, body=BODY, headers={"x-api-key": key}),
              http_api_event("POST", MESSAGES, body={**BODY, "stream": True}, headers={"x-api-key": key})]
    # -P and a neutral cwd: the repository's own handler/ must not shadow the artifact's
    result = subprocess.run([sys.executable, "-S", "-B", "-P", "-c", DRIVER, str(host_artifact)],
                            input=json.dumps(events), capture_output=True, text=True, timeout=180,
                            cwd=host_artifact.parent,
                            env=isolated_env(stack, moto_endpoint, PYTHONPATH=str(host_artifact)))
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads(result.stdout.splitlines()[-1])

    message, stream = report["responses"]
    assert message["statusCode"] == 200, message
    assert json.loads(body_of(message))["content"][0]["text"] == "Hello from claude-sonnet-4-5: hi"
    assert stream["statusCode"] == 200, stream
    assert stream["headers"]["content-type"].startswith("text/event-stream")
    names = [block.split("\n")[0].removeprefix("event: ") for block in body_of(stream).decode().strip().split("\n\n")]
    assert names[0] == "message_start" and names[-1] == "message_stop"

    # litellm's native Anthropic stream is the path that needs litellm.proxy, soundfile and numpy.
    assert {"handler", "litellm", "fastapi", "mangum", "boto3", "botocore", "numpy", "soundfile",
            "redis", "orjson", "backoff"} <= set(report["from_artifact"])
    assert report["elsewhere"] == []
    assert len(stack.records(key, 2)) == 2  # metered through the artifact's boto3
    # Init did the importing, which is what SnapStart captures: without handler.snapstart's
    # FIRST_CALL_MODULES the first stream imported about 480 modules (1.7 s), now a handful.
    assert all(len(modules) <= 20 for modules in report["imported"]), report["imported"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def streaming_mode(host_artifact, moto_endpoint, fake, tmp_path):
    """run.sh from the artifact, as the Lambda Web Adapter starts it: (base URL, api key)."""
    stack = new_stack(fake.url)
    key = stack.add_key(name="streaming")
    shim = tmp_path / "bin"
    shim.mkdir()
    python = shim / "python"  # Lambda's `python`, with nothing but the artifact to import from
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" -S -B "$@"\n')
    python.chmod(0o755)
    port = free_port()
    env = isolated_env(stack, moto_endpoint, LAMBDA_TASK_ROOT=str(host_artifact), AWS_LWA_PORT=str(port),
                       PATH=f"{shim}:{os.environ.get('PATH', '/usr/bin:/bin')}")
    process = subprocess.Popen(["sh", str(host_artifact / "run.sh")], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, process, timeout=120)
        yield url, key
    finally:
        process.terminate()
        process.wait(10)


def test_the_streaming_mode_streams_from_the_pruned_artifact(streaming_mode, fake):
    url, key = streaming_mode
    restored = httpx.post(url + snapstart.AFTER_RESTORE_PATH, timeout=10)
    assert restored.status_code == 204  # the adapter's SnapStart hook, answered in front of the app

    fake.pace_stream("claude-sonnet-4-5", seconds=0.3)
    started, arrivals = time.monotonic(), []
    words = {**BODY, "stream": True, "messages": [{"role": "user", "content": "hello there, a few more words"}]}
    with httpx.stream("POST", url + MESSAGES, json=words,
                      headers={"x-api-key": key}, timeout=30) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("event:"):
                arrivals.append((line.split(": ")[1], time.monotonic() - started))
    assert arrivals[0][0] == "message_start" and arrivals[-1][0] == "message_stop"
    first_delta = next(t for name, t in arrivals if name == "content_block_delta")
    assert arrivals[-1][1] - first_delta > 0.6  # later events came later: nothing was buffered
