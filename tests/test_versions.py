"""scripts/_versions.py, which scripts/deploy runs after every deploy: old published
versions (each with a billed SnapStart snapshot) are deleted, never one an alias
uses or routes a canary's share to, and the newest few stay for rollbacks.

Driven as the deploy script runs it (its command line), against the session's
moto server, on a function with real published versions.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import boto3
import pytest

ROOT = Path(__file__).resolve().parents[1]
FUNCTION = "versions-gateway"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


versions = _load("_versions")


def test_which_versions_go():
    numbered = [str(n) for n in range(1, 9)]
    assert versions.versions_to_delete(["$LATEST", *numbered], {"8"}, keep=3) == ["1", "2", "3", "4", "5"]
    # A canary in progress: `live` still on 5 while 8 takes a share; both stay.
    assert versions.versions_to_delete(["$LATEST", *numbered], {"5", "8"}, keep=2) == ["1", "2", "3", "4", "6"]
    assert versions.versions_to_delete(["$LATEST", "1"], {"1"}, keep=0) == []
    assert versions.aliased_versions([{"FunctionVersion": "4", "RoutingConfig": {
        "AdditionalVersionWeights": {"6": 0.1}}}, {"FunctionVersion": "2"}]) == {"2", "4", "6"}


@pytest.fixture
def published(moto_endpoint):
    """A function with six published versions: `live` on 5 with a 10% canary to 6 (a gradual
    deployment under way), and an operator's own alias on 1."""
    iam = boto3.client("iam")
    role = iam.create_role(RoleName=f"{FUNCTION}-role-{os.urandom(4).hex()}", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                 "Principal": {"Service": "lambda.amazonaws.com"}}]}))["Role"]["Arn"]
    name = f"{FUNCTION}-{os.urandom(4).hex()}"
    lam = boto3.client("lambda")
    for number in range(1, 7):
        code = io.BytesIO()
        with zipfile.ZipFile(code, "w") as archive:
            archive.writestr("handler.py", f"def handler(event, context):\n    return {number}\n")
        if number == 1:
            lam.create_function(FunctionName=name, Runtime="python3.12", Role=role, Handler="handler.handler",
                                Code={"ZipFile": code.getvalue()})
        else:
            lam.update_function_code(FunctionName=name, ZipFile=code.getvalue())
        lam.publish_version(FunctionName=name)
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion="5",
                     RoutingConfig={"AdditionalVersionWeights": {"6": 0.1}})
    lam.create_alias(FunctionName=name, Name="pinned", FunctionVersion="1")
    yield name, lam


def remaining(lam, name) -> list[str]:
    return [v["Version"] for v in lam.list_versions_by_function(FunctionName=name)["Versions"]]


def test_the_deploy_step_deletes_old_versions_but_never_an_aliased_one(published):
    name, lam = published
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "_versions.py"), name, "--keep", "2",
                          "--region", "us-east-1"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "deleted 3 old version(s) (2, 3, 4)" in run.stdout
    assert sorted(remaining(lam, name), key=lambda v: (v != "$LATEST", v)) == ["$LATEST", "1", "5", "6"]

    again = subprocess.run([sys.executable, str(ROOT / "scripts" / "_versions.py"), name, "--keep", "2",
                            "--region", "us-east-1"], capture_output=True, text=True, timeout=60)
    assert "deleted 0 old version(s)" in again.stdout
