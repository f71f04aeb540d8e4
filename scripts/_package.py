"""Build the Lambda function's artifact: the locked dependencies for Lambda's
platform, the handler, and the streaming run script, minus what the function
never loads.

Why this and not `sam build`'s own pip workflow: that one installs for the
build machine unless it runs in Docker, and it ships litellm whole (its proxy
server's admin UI, every botocore service model, test suites, unstripped
libraries) when the function loads a fraction of it. Here pip's cross-platform
options fetch the wheels of the target (no Docker), and every prune rule says
why the function cannot miss it. Then the code is compiled to bytecode for the
target's Python, since Lambda's /var/task is read-only: without shipped .pyc
files every cold start compiles every module it imports from source.

    python scripts/_package.py                      # Lambda: arm64, Python 3.12 -> build/lambda, build/lambda.zip
    python scripts/_package.py --arch host --out D  # this machine's platform, same pruning (the tests run it)
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import platform
import re
import shutil
import stat
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from packaging.markers import Marker

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"

# Sizes in Lambda's own unit: its "250 MB" unzipped limit is 262,144,000 bytes,
# so an MB there is 2**20 bytes (MiB), and so it is here.
MB = 1 << 20
BUDGET_UNPACKED = 200 * MB  # Lambda allows 250 MB with layers (the adapter layer is one)
BUDGET_ZIPPED = 60 * MB

# Lambda's python3.12+ runtimes run on Amazon Linux 2023 (glibc 2.34). pip 23
# does not widen a manylinux tag to the older ones it implies, so all of them
# are listed: wheels are tagged anywhere from manylinux2014 to manylinux_2_34.
GLIBC_TAGS = ("manylinux2014", "manylinux_2_17", "manylinux_2_24", "manylinux_2_26",
              "manylinux_2_27", "manylinux_2_28", "manylinux_2_31", "manylinux_2_34")
MACHINES = {"arm64": "aarch64", "x86_64": "x86_64"}

# The streaming mode's handler: the Lambda Web Adapter (AWS_LAMBDA_EXEC_WRAPPER
# =/opt/bootstrap) runs this instead of the Python runtime's loop, waits for the
# app on 127.0.0.1:8080, relays API Gateway's events to it and streams the
# responses back. The same app as in buffered mode, wrapped only to answer the
# adapter's SnapStart restore hook (handler/runtime/snapstart.py).
STREAMING_APP = "handler.runtime.snapstart:streaming_app"
# uvicorn's options in streaming mode, besides the app and its port: one source for run.sh and for
# the benchmark's streaming target (scripts/benchmark/targets.py), so that what is measured is what
# is deployed. No access log: a line per request is CPU the function would spend for nothing
# (API Gateway logs the request); no lifespan: nothing in the app waits for startup or shutdown events.
STREAMING_UVICORN_OPTIONS = ("--host", "127.0.0.1", "--lifespan", "off", "--no-access-log",
                             "--log-level", "warning", "--http", "handler.runtime.serving:GuardedHTTPProtocol")


def streaming_uvicorn_argv(app: str, port: str) -> list[str]:
    """`python`'s arguments that serve `app` as the streaming mode does (run.sh: STREAMING_APP)."""
    return ["-m", "uvicorn", app, "--port", port, *STREAMING_UVICORN_OPTIONS]


RUN_SCRIPT = f"""\
#!/bin/sh
# Streaming mode (template.yaml StreamingMode=streaming): started by the Lambda Web Adapter.
cd "$LAMBDA_TASK_ROOT" || exit 1
PYTHONPATH="$LAMBDA_TASK_ROOT" exec python {" ".join(streaming_uvicorn_argv(STREAMING_APP, '"${AWS_LWA_PORT:-8080}"'))}
"""

# botocore ships a model for each of 440 services and loads one only when a
# client for that service is created. The function creates clients for its own
# three; credential resolution uses sts and sso; litellm creates clients for
# sts, kms, s3 and sagemaker-runtime, and signs Bedrock calls itself (no model
# needed) but its Bedrock agents and guardrails paths use the runtime clients.
BOTOCORE_SERVICES = frozenset({
    "dynamodb", "secretsmanager", "sqs",
    "sts", "sso", "sso-oidc",
    "kms", "s3", "sagemaker-runtime", "bedrock-runtime", "bedrock-agent-runtime",
})


# Shipped as source only. Bytecode for everything would add 72.1 MiB (33.4 MiB
# zipped: 220.5 / 80.6 MiB in all, over both budgets); litellm and the openai
# SDK (imported only with it) are 52.0 MiB of that (24.7 zipped), and even the
# 2,130 of their modules a SnapStart init loads would not fit the zipped budget
# with the rest. The function imports them only at a SnapStart or provisioned-
# concurrency init, which runs before any request (at version publishing, or
# ahead of traffic), or in an on-demand environment at the first request to a
# provider that does not speak Anthropic's API (handler.runtime.snapstart). Everything
# else (+20.1 MiB, 8.7 zipped) is compiled: all an on-demand init and the
# Anthropic route load, and the streaming mode's uvicorn.
BYTECODE_SKIPPED = frozenset({"litellm", "openai"})
# Where a CPython of another minor version than the build's may be (besides PATH).
PYTHON_GLOBS = ("{pyenv}/versions/{version}.*/bin/python{version}",
                "{home}/.local/share/uv/python/cpython-{version}.*/bin/python{version}")


@dataclass(frozen=True)
class Target:
    """A platform to build for: what pip fetches wheels for and markers are evaluated against."""

    arch: str  # "arm64" | "x86_64" (Lambda's names)
    python: str  # "3.12"

    @property
    def machine(self) -> str:
        return MACHINES[self.arch]

    @property
    def platforms(self) -> list[str]:
        return [f"{tag}_{self.machine}" for tag in GLIBC_TAGS]

    def marker_environment(self) -> dict[str, str]:
        """PEP 508 values for the target, not for the interpreter running the build."""
        return {
            "implementation_name": "cpython", "platform_python_implementation": "CPython",
            "os_name": "posix", "sys_platform": "linux", "platform_system": "Linux",
            "platform_machine": self.machine, "python_version": self.python,
            "python_full_version": f"{self.python}.0", "implementation_version": f"{self.python}.0",
            "platform_release": "", "platform_version": "", "extra": "",
        }


def host_target() -> Target:
    arch = {"x86_64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}[platform.machine()]
    return Target(arch, f"{sys.version_info.major}.{sys.version_info.minor}")


# --------------------------------------------------------------------------- requirements

def lock_entries(lock_text: str) -> list[tuple[str, str]]:
    """(pin line, whole entry with its --hash lines) for every package in a pip-compile lock."""
    entries: list[tuple[str, str]] = []
    for line in lock_text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line[0].isspace():
            entries.append((line, line + "\n"))
        elif entries:
            pin, text = entries[-1]
            entries[-1] = (pin, text + line + "\n")
    return entries


def requirements_for(target: Target, lock_text: str) -> str:
    """The lock's entries whose environment markers hold on the target, markers removed.

    pip evaluates markers against the interpreter that runs it, not against
    --python-version: on a 3.11 build machine it would pick a pin marked
    `python_full_version < '3.12'` for a 3.12 Lambda (or drop one marked
    `>= '3.12'`). So the choice is made here.
    """
    environment = target.marker_environment()
    selected = []
    for pin, text in lock_entries(lock_text):
        requirement, _, marker = pin.rstrip(" \\").partition(";")
        if marker.strip() and not Marker(marker.strip()).evaluate(environment):
            continue
        selected.append(text.replace(pin, requirement.strip() + " \\", 1))
    return "".join(selected)


def pip_install(requirements: Path, target_dir: Path, target: Target) -> None:
    """Exactly the selected files: hashes required, no resolution of our own.

    `--no-deps` and `--ignore-requires-python` because pip (23.x) judges both
    dependency markers and Requires-Python by the interpreter running it, not
    by --python-version; the lock was resolved for every supported Python and
    `requirements_for` already picked the target's pins, whose wheel tags pip
    still checks against the target.
    """
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
               "--require-hashes", "--no-deps", "--ignore-requires-python", "--no-compile",
               "--only-binary=:all:",
               "--implementation", "cp", "--python-version", target.python,
               *[arg for tag in target.platforms for arg in ("--platform", tag)],
               "--target", str(target_dir), "-r", str(requirements)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        noise = re.compile(r"Location '.*' is ignored")
        errors = "\n".join(line for line in result.stderr.splitlines() if not noise.search(line))
        raise SystemExit(f"pip install failed:\n{errors}")


# --------------------------------------------------------------------------- pruning

@dataclass
class Pruned:
    """Bytes removed per rule, for the report."""

    removed: dict[str, int] = field(default_factory=dict)

    def add(self, rule: str, size: int) -> None:
        self.removed[rule] = self.removed.get(rule, 0) + size


def tree_size(path: Path) -> int:
    if path.is_file() or path.is_symlink():
        return path.lstat().st_size
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() or p.is_symlink())


def remove(path: Path, rule: str, pruned: Pruned) -> None:
    if not path.exists():
        return
    pruned.add(rule, tree_size(path))
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def prune(site: Path, strip_tool: str | None) -> Pruned:
    """Remove what the function never loads; each rule is named in the report."""
    pruned = Pruned()
    for cache in sorted(site.rglob("__pycache__"), reverse=True):
        remove(cache, "bytecode caches shipped in wheels (compiled afresh below, for the target's Python)", pruned)
    for tests in sorted(p for p in site.rglob("tests") if p.is_dir()):
        remove(tests, "packages' own test suites", pruned)
    remove(site / "bin", "console scripts (their shebangs point at the build machine)", pruned)
    remove(site / "litellm/proxy/_experimental", "litellm proxy's admin UI", pruned)
    # The `litellm-proxy` CLI: only its console script (removed above) imports it.
    remove(site / "litellm/proxy/client", "litellm proxy's command-line client", pruned)
    remove(site / "litellm/proxy/swagger", "litellm proxy server's API docs assets", pruned)
    remove(site / "litellm/proxy/_lazy_openapi_snapshot.json", "litellm proxy server's API docs assets", pruned)
    # Powertools: the gateway uses its Logger and Metrics (handler/observe/telemetry.py), whose imports
    # reach into utilities/ only for jmespath_utils.
    powertools = site / "aws_lambda_powertools"
    remove(powertools / "event_handler", "Powertools utilities the gateway does not use", pruned)
    for utility in sorted((powertools / "utilities").glob("*")) if (powertools / "utilities").is_dir() else ():
        if utility.name not in ("__init__.py", "jmespath_utils"):
            remove(utility, "Powertools utilities the gateway does not use", pruned)
    remove(site / "hf_xet", "hf_xet: Hugging Face Hub download accelerator (the function downloads nothing)", pruned)
    for info in site.glob("hf_xet-*.dist-info"):
        remove(info, "hf_xet: Hugging Face Hub download accelerator (the function downloads nothing)", pruned)
    for model in sorted((site / "botocore/data").iterdir()):
        if model.is_dir() and model.name not in BOTOCORE_SERVICES:
            remove(model, "botocore models of AWS services nothing here calls", pruned)
    for record in sorted(site.glob("*.dist-info/RECORD")):
        remove(record, "wheel RECORD and SBOM files (for installers and auditors; METADATA stays)", pruned)
    for sbom in sorted(site.glob("*.dist-info/sboms")):
        remove(sbom, "wheel RECORD and SBOM files (for installers and auditors; METADATA stays)", pruned)
    # tiktoken's cached p50k_base: only text_completion() decodes token-list prompts with it.
    remove(site / "litellm/litellm_core_utils/tokenizers/ec7223a39ce59f226a68acc30dc1af2788490e15",
           "tiktoken's p50k_base (legacy text completions only)", pruned)
    for stub in sorted(site.rglob("*.pyi")):
        remove(stub, "type stubs", pruned)
    if strip_tool:
        strip_shared_objects(site, strip_tool, pruned)
    return pruned


def _readelf(tool_dir: Path, *args: str) -> str:
    return subprocess.run([str(tool_dir / "llvm-readelf"), *args], capture_output=True, text=True, check=True).stdout


def _dynamic_interface(tool_dir: Path, library: Path) -> str:
    out = _readelf(tool_dir, "--dynamic-table", "--dyn-syms", str(library))
    return "\n".join(line for line in out.splitlines() if " at offset " not in line)


def load_segments_aligned(library: Path) -> bool:
    """Every PT_LOAD's file offset and address agree modulo its alignment: what the
    dynamic loader checks first ("ELF load command address/offset not page-aligned")."""
    data = library.read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2:  # 64-bit ELF only
        return True
    order = "<" if data[5] == 1 else ">"
    (table,) = struct.unpack_from(order + "Q", data, 0x20)
    entry_size, entries = struct.unpack_from(order + "HH", data, 0x36)
    for index in range(entries):
        kind, _, offset, address, _, _, _, align = struct.unpack_from(order + "IIQQQQQQ", data, table + index * entry_size)
        if kind == 1 and align > 1 and offset % align != address % align:
            return False
    return True


def strip_shared_objects(site: Path, strip_tool: str, pruned: Pruned) -> None:
    """Drop symbol tables the dynamic loader never reads (what `strip` on a wheel's .so does).

    Some wheels ship unstripped libraries (tokenizers, yaml, aiohttp...). Left
    alone: libraries auditwheel rewrote with patchelf (vendored into *.libs, or
    given an RPATH to them), because stripping such a library once misaligned
    its load segments on x86_64. Each stripped library must keep its dynamic table and
    symbols and pass the loader's alignment check, or the original is put back.
    """
    tool_dir = Path(strip_tool).parent
    for library in sorted(p for p in site.rglob("*.so*") if p.is_file() and not p.is_symlink()):
        with library.open("rb") as head:
            if head.read(4) != b"\x7fELF":
                continue
        if library.parent.name.endswith(".libs") or re.search(
                r"\((RPATH|RUNPATH)\)", _readelf(tool_dir, "--dynamic-table", str(library))):
            continue
        original, interface = library.read_bytes(), _dynamic_interface(tool_dir, library)
        subprocess.run([strip_tool, "--strip-unneeded", str(library)], check=True)
        if _dynamic_interface(tool_dir, library) != interface or not load_segments_aligned(library):
            library.write_bytes(original)
            continue
        pruned.add("symbol tables of shared libraries (llvm-strip --strip-unneeded)",
                   len(original) - library.stat().st_size)


# Where llvm's tools are when they are not on PATH: Homebrew's llvm is keg-only (never
# linked into PATH), Debian's versioned packages install llvm-strip-NN.
LLVM_DIRS = ("/opt/homebrew/opt/llvm/bin", "/usr/local/opt/llvm/bin", "/usr/lib/llvm-*/bin")


def find_strip_tool() -> str | None:
    """llvm-strip (with its llvm-readelf) from PATH or a known llvm install, else None.

    llvm-strip handles every architecture; binutils' strip only the build
    machine's. Without it the arm64 artifact is over the zipped budget.
    """
    tool = shutil.which("llvm-strip")
    if tool and shutil.which("llvm-readelf"):
        return tool
    for directory in (d for pattern in LLVM_DIRS for d in sorted(glob.glob(pattern), reverse=True)):
        strip, readelf = Path(directory) / "llvm-strip", Path(directory) / "llvm-readelf"
        if os.access(strip, os.X_OK) and os.access(readelf, os.X_OK):
            return str(strip)
    return None


STRIP_TOOL_MISSING = (
    "llvm-strip and llvm-readelf not found (looked on PATH and in " + ", ".join(LLVM_DIRS) + "): without "
    "them the arm64 artifact is about 60 MiB zipped, over budget. Install llvm (Debian/Ubuntu: "
    "apt-get install llvm; macOS: brew install llvm, found where Homebrew puts it).")


# --------------------------------------------------------------------------- bytecode

@dataclass
class Bytecode:
    """What `compile_bytecode` did, for the report."""

    python: str  # the target's major.minor
    interpreter: str | None  # None: no CPython of that version here, nothing compiled
    added_bytes: int = 0
    skipped: tuple[str, ...] = ()
    seconds: float = 0.0

    def line(self) -> str:
        if self.interpreter is None:
            return (f"  ! NO BYTECODE: no CPython {self.python} found (the build runs {python_version()}; "
                    f"looked for python{self.python} on PATH, under pyenv and uv): every cold start "
                    f"compiles the modules it imports from source")
        return (f"  + {self.added_bytes / MB:6.1f} MB  bytecode for Python {self.python} (unchecked-hash), "
                f"all but {', '.join(self.skipped) or 'nothing'} ({self.interpreter}, {self.seconds:.1f} s)")


def python_version(executable: str | None = None) -> str:
    """major.minor of a CPython ("" if it does not run or is another implementation)."""
    if executable is None:
        return f"{sys.version_info.major}.{sys.version_info.minor}"
    try:
        result = subprocess.run([executable, "-c", "import sys; print(sys.implementation.name, "
                                 "'%d.%d' % sys.version_info[:2])"],
                                capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    name, _, version = result.stdout.strip().partition(" ")
    return version if result.returncode == 0 and name == "cpython" else ""


def find_python(version: str) -> str | None:
    """A CPython whose major.minor is `version`: bytecode is only valid for its own version.

    The build's own interpreter if it is that version, else python3.X on PATH
    (a pyenv shim there fails when that version is not selected, so each
    candidate is run), else one installed by pyenv or uv.
    """
    if sys.implementation.name == "cpython" and python_version() == version:
        return sys.executable
    home = os.path.expanduser("~")
    pyenv = os.environ.get("PYENV_ROOT") or os.path.join(home, ".pyenv")
    candidates = [shutil.which(f"python{version}")]
    for pattern in PYTHON_GLOBS:
        candidates += sorted(glob.glob(pattern.format(pyenv=pyenv, home=home, version=version)), reverse=True)
    return next((c for c in candidates if c and python_version(c) == version), None)


def compile_bytecode(site: Path, target: Target, skipped=BYTECODE_SKIPPED) -> Bytecode:
    """__pycache__/*.cpython-3XX.pyc next to every module, but for `skipped` packages.

    Unchecked-hash pycs (PEP 552): the import system loads them without
    comparing them with the source's mtime (which unzipping changes) or hash,
    so they hold for any 3.X.y. Optimization level 0: some libraries read
    docstrings and rely on asserts at run time (FastAPI's OpenAPI descriptions).
    Paths in code objects are written as /var/task (Lambda's task root), not
    this build's directory; Python replaces them with the file's real path on
    import anyway.
    """
    interpreter = find_python(target.python)
    if interpreter is None:
        return Bytecode(target.python, None)
    roots = sorted(str(path) for path in site.iterdir()
                   if path.name.split(".")[0] not in skipped and (
                       path.suffix == ".py" or (path.is_dir() and not path.name.endswith((".dist-info", ".libs"))
                                                and path.name != "__pycache__")))
    before, started = tree_size(site), time.monotonic()
    result = subprocess.run([interpreter, "-m", "compileall", "-q", "-j", "0",
                             "--invalidation-mode", "unchecked-hash", "-s", str(site), "-p", "/var/task",
                             *roots], capture_output=True, text=True)
    if result.returncode != 0:
        # Not fatal for an unimportable file nothing imports, but it is named.
        print(f"warning: compileall ({interpreter}) failed for some files:\n"
              f"{(result.stdout + result.stderr)[-4000:]}", file=sys.stderr)
    return Bytecode(target.python, interpreter, tree_size(site) - before,
                    tuple(sorted(skipped)), time.monotonic() - started)


# --------------------------------------------------------------------------- the artifact

def config_digest(artifact: Path, template: Path, parameters: list[str]) -> str:
    """sha256 of what a deploy runs: the artifact's files (path, executable bit, bytes),
    the template and the parameter overrides (order-free).

    template.yaml's AutoPublishCodeSha256 takes it, so SAM publishes a new version (and
    moves the alias) exactly when one of them changes. The build is byte-reproducible,
    so rebuilding the same commit with the same settings gives the same digest.
    """
    digest = hashlib.sha256()
    for path in sorted(p for p in artifact.rglob("*") if p.is_file()):
        executable = "x" if path.stat().st_mode & stat.S_IXUSR else "-"
        digest.update(f"file {path.relative_to(artifact).as_posix()} {executable}\n".encode())
        with path.open("rb") as source:
            digest.update(hashlib.file_digest(source, "sha256").digest())
    digest.update(b"template\n" + hashlib.sha256(template.read_bytes()).digest())
    for parameter in sorted(parameters):
        digest.update(f"parameter {parameter}\n".encode())
    return digest.hexdigest()


def add_function_code(site: Path) -> None:
    shutil.copytree(ROOT / "handler", site / "handler",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    run = site / "run.sh"
    run.write_text(RUN_SCRIPT)
    run.chmod(0o755)


# Already compressed: deflating them again only adds deflate's framing.
STORED_SUFFIXES = (".gz", ".zip", ".png", ".jpg", ".jpeg", ".whl")


def write_zip(site: Path, zip_path: Path) -> None:
    """Deterministic: sorted entries, fixed timestamps, only the executable bit kept."""
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for path in sorted(p for p in site.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(path.relative_to(site).as_posix(), date_time=(1980, 1, 1, 0, 0, 0))
            mode = 0o755 if path.stat().st_mode & stat.S_IXUSR else 0o644
            info.external_attr = (stat.S_IFREG | mode) << 16
            info.compress_type = zipfile.ZIP_STORED if path.name.endswith(STORED_SUFFIXES) \
                else zipfile.ZIP_DEFLATED
            with path.open("rb") as source, archive.open(info, "w") as sink:
                shutil.copyfileobj(source, sink, 1 << 20)


@dataclass
class Report:
    target: Target
    installed_bytes: int
    unpacked_bytes: int
    zipped_bytes: int | None
    pruned: dict[str, int]
    bytecode: Bytecode | None = None

    def lines(self) -> list[str]:
        out = [f"target: linux {self.target.arch}, Python {self.target.python} (MB = 2**20 bytes, as Lambda counts)",
               f"installed (before pruning): {self.installed_bytes / MB:7.1f} MB"]
        out += [f"  - {size / MB:6.1f} MB  {rule}" for rule, size in
                sorted(self.pruned.items(), key=lambda item: -item[1])]
        if self.bytecode is not None:
            out.append(self.bytecode.line())
        out.append(f"unpacked: {self.unpacked_bytes / MB:7.1f} MB (budget {BUDGET_UNPACKED / MB:.0f} MB)")
        if self.zipped_bytes is not None:
            out.append(f"zipped:   {self.zipped_bytes / MB:7.1f} MB (budget {BUDGET_ZIPPED / MB:.0f} MB)")
        return out

    def within_budget(self) -> bool:
        return self.unpacked_bytes <= BUDGET_UNPACKED and (self.zipped_bytes or 0) <= BUDGET_ZIPPED


def build(target: Target, out: Path, zip_path: Path | None, *, pruning: bool = True,
          bytecode: bool = True) -> Report:
    """Install, add the code, prune, compile, zip; `out`'s previous contents are removed.

    Without pruning, nothing is compiled either: that is pip's install as it came.
    """
    out.mkdir(parents=True, exist_ok=True)
    for previous in out.iterdir():  # emptied, not replaced: sam build hands over ARTIFACTS_DIR
        shutil.rmtree(previous) if previous.is_dir() and not previous.is_symlink() else previous.unlink()
    with tempfile.TemporaryDirectory() as scratch:
        requirements = Path(scratch) / "requirements.txt"
        requirements.write_text(requirements_for(target, LOCK.read_text()))
        pip_install(requirements, out, target)
    add_function_code(out)
    installed = tree_size(out)
    pruned = prune(out, find_strip_tool()) if pruning else Pruned()
    compiled = compile_bytecode(out, target) if pruning and bytecode else None  # after stripping
    zipped = None
    if zip_path is not None:
        write_zip(out, zip_path)
        zipped = zip_path.stat().st_size
    return Report(target, installed, tree_size(out), zipped, pruned.removed, compiled)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["digest"]:  # _package.py digest ARTIFACT_DIR TEMPLATE [NAME=VALUE ...]
        print(config_digest(Path(argv[1]), Path(argv[2]), argv[3:]))
        return 0
    if argv[:1] == ["strip-tool"]:  # prints the llvm-strip found, or why there is none (exit 1)
        tool = find_strip_tool()
        print(tool or STRIP_TOOL_MISSING, file=sys.stdout if tool else sys.stderr)
        return 0 if tool else 1
    parser = argparse.ArgumentParser(
        prog="scripts/package", description=__doc__.split("\n\n")[0].replace("\n", " "),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        epilog="Fails when the artifact is over budget (200 MB unpacked, 60 MB zipped). "
               "`scripts/package strip-tool` prints the llvm-strip it would use.")
    parser.add_argument("--arch", choices=["arm64", "x86_64", "host"], default="arm64",
                        help="Lambda's architecture to build for (host: this machine's, for local runs)")
    parser.add_argument("--python-version", default="3.12",
                        help="Lambda's Python the wheels and bytecode are for (ignored with --arch host)")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "lambda", help="the artifact's directory")
    parser.add_argument("--zip", type=Path, default=ROOT / "build" / "lambda.zip", help="the zipped artifact")
    parser.add_argument("--no-zip", action="store_true", help="only the directory (sam build zips it)")
    parser.add_argument("--no-prune", action="store_true",
                        help="measure the unpruned install (no bytecode either)")
    parser.add_argument("--no-bytecode", action="store_true",
                        help="ship sources only (cold starts compile what they import)")
    parser.add_argument("--report", type=Path, help="also write the sizes as JSON here")
    args = parser.parse_args(argv)

    target = host_target() if args.arch == "host" else Target(args.arch, args.python_version)
    report = build(target, args.out.resolve(), None if args.no_zip else args.zip.resolve(),
                   pruning=not args.no_prune, bytecode=not args.no_bytecode)
    print("\n".join(report.lines()))
    if args.report:
        args.report.write_text(json.dumps({
            "arch": target.arch, "python": target.python, "installed_bytes": report.installed_bytes,
            "unpacked_bytes": report.unpacked_bytes, "zipped_bytes": report.zipped_bytes,
            "pruned": report.pruned, "bytecode": report.bytecode and {
                "python": report.bytecode.python, "interpreter": report.bytecode.interpreter,
                "added_bytes": report.bytecode.added_bytes, "skipped": list(report.bytecode.skipped)}},
            indent=1))
    if args.arch != "host" and not args.no_prune and not report.within_budget():
        print("error: over budget" + ("" if find_strip_tool() else f" ({STRIP_TOOL_MISSING})"), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
