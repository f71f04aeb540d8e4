"""LiteLLM Proxy's own environment and configuration.

The proxy is installed into .venv-litellm-proxy from scripts/litellm-proxy.lock
with --require-hashes, never into the product's .venv (its extra pulls a
hundred packages the gateway must not depend on). A stamp holding the lock's
digest makes the install happen once per lock change.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

MASTER_KEY = "sk-bench-master-key"


def ensure_proxy_venv(root: Path) -> Path:
    """The proxy venv's python, installed from the hashed lock when missing or stale.

    Built as .venv is (scripts/_bootstrap.sh): a venv without a matching stamp (a failed or
    older build) is made anew, and its pip is brought to scripts/pip.lock's before the lock,
    since the pip some Pythons bundle (23.2.1) cannot install it under --require-hashes."""
    venv = root / ".venv-litellm-proxy"
    lock = root / "scripts" / "litellm-proxy.lock"
    pip_lock = root / "scripts" / "pip.lock"
    digest = hashlib.sha256(lock.read_bytes() + pip_lock.read_bytes()).hexdigest()
    stamp = venv / ".lock.sha256"
    python = venv / "bin" / "python"
    if python.exists() and stamp.exists() and stamp.read_text().strip() == digest:
        return python
    if venv.exists():
        print(f"==> removing {venv.name}: no stamp for these locks (a failed or older build)",
              file=sys.stderr, flush=True)
        shutil.rmtree(venv)
    print(f"==> creating {venv.name} for LiteLLM Proxy", file=sys.stderr, flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--require-hashes"]
    subprocess.run([*pip, "--only-binary=:all:", "--no-deps", "-r", str(pip_lock)], check=True)
    print(f"==> installing {lock.relative_to(root)} into {venv.name} (a few minutes the first time)",
          file=sys.stderr, flush=True)
    subprocess.run([*pip, "-r", str(lock)], check=True)
    installed = subprocess.run([str(python), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
                               check=True, capture_output=True, text=True).stdout.strip()
    if installed in ("1.82.7", "1.82.8"):
        raise SystemExit(f"refusing: litellm {installed} is a known supply-chain compromise")
    stamp.write_text(digest + "\n")
    return python


def write_config(directory: Path, upstream_url: str, *, bedrock: bool = False) -> Path:
    """config.yaml: the benchmark models on the fake upstream, a master key, no database.

    OpenAI models go through /chat/completions, as the gateway sends them. `bedrock`: the
    upstream is the fake Bedrock, the endpoint override of litellm's `bedrock/` models, which
    sign with the environment's AWS credentials (the benchmark's)."""
    from .aws_stack import BEDROCK_CLAUDE, BEDROCK_NOVA, REGION

    path = directory / "litellm-proxy-config.yaml"
    models = "".join(f"""\
  - model_name: {model}
    litellm_params:
      model: {model}
      aws_region_name: {REGION}
      api_base: {upstream_url}
      aws_access_key_id: os.environ/AWS_ACCESS_KEY_ID
      aws_secret_access_key: os.environ/AWS_SECRET_ACCESS_KEY
""" for model in (BEDROCK_CLAUDE, BEDROCK_NOVA)) if bedrock else ""
    path.write_text(f"""\
model_list:
  - model_name: anthropic/claude-sonnet-4-5
    litellm_params:
      model: anthropic/claude-sonnet-4-5
      api_base: {upstream_url}
      api_key: sk-ant-bench-fake
  - model_name: openai/gpt-4o-mini
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: {upstream_url}/v1
      api_key: sk-openai-bench-fake
{models}litellm_settings:
  use_chat_completions_url_for_anthropic_messages: true
general_settings:
  master_key: {MASTER_KEY}
""")
    return path
