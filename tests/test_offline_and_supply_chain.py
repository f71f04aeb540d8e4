"""The package reaches no network at import, and the environment is what the lock says.

litellm fetches its price map at import unless told not to; the package sets
that itself. litellm 1.82.7 and 1.82.8 were a published supply-chain
compromise that planted a .pth file: the environment is checked for both.
"""

from __future__ import annotations

import site
import subprocess
import sys
import sysconfig
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMPROMISED_LITELLM = {"1.82.7", "1.82.8"}
# .pth files that legitimately ship with pip/setuptools/virtualenv or an editable install.
ALLOWED_PTH = {"distutils-precedence.pth", "_virtualenv.pth"}

BLOCK_SOCKETS = """
import socket
def refuse(*args, **kwargs):
    raise RuntimeError("network access at import: %r" % (args,))
socket.socket.connect = refuse
socket.socket.connect_ex = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse
import os
for name in ("LITELLM_LOCAL_MODEL_COST_MAP", "LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS", "LITELLM_OFFLINE_MODE"):
    os.environ.pop(name, None)
import handler.lambda_function
import litellm
assert litellm.model_cost["claude-sonnet-4-5"]["input_cost_per_token"] > 0
print("imported offline")
"""


def test_importing_the_lambda_handler_needs_no_network():
    result = subprocess.run([sys.executable, "-c", BLOCK_SOCKETS], capture_output=True, text=True,
                            cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "imported offline" in result.stdout


def test_no_compromised_litellm_is_installed():
    assert metadata.version("litellm") not in COMPROMISED_LITELLM


def test_the_lock_never_pins_a_compromised_litellm_and_hashes_everything():
    lock = (ROOT / "requirements.lock").read_text()
    assert not any(f"litellm=={version}" in lock for version in COMPROMISED_LITELLM)
    pins = [line for line in lock.splitlines() if line and not line[0].isspace() and not line.startswith("#")]
    assert pins and all(line.rstrip().endswith("\\") for line in pins), "every pin carries --hash lines"


def _editable(path: Path) -> bool:
    return path.name.startswith("__editable__")


def test_no_unexpected_pth_files_in_the_environment():
    directories = {Path(p) for p in [*site.getsitepackages(), sysconfig.get_paths()["purelib"]] if Path(p).is_dir()}
    unexpected = sorted(str(pth) for directory in directories for pth in directory.glob("*.pth")
                        if pth.name not in ALLOWED_PTH and not _editable(pth))
    assert unexpected == [], "a .pth file runs code at every interpreter start: read it"
