"""The suite prints its results, not the gateway's output: a request's log line and metric
documents, written after its response (with its ledger entry), stay in the captured output of
the test that made the request (tests/conftest.py waits for them inside pytest's capture)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

ONE_REQUEST = '''
def test_one_metered_request(client):
    client.messages.create(model="anthropic/claude-sonnet-4-5", max_tokens=20,
                           messages=[{"role": "user", "content": "hello"}])
'''

# pytest reports each phase with its capture suspended; a slow terminal makes that gap long
# enough for the line, written once the ledger entry is in, to land in it every time.
SLOW_TERMINAL = '''
import time

def pytest_runtest_logreport(report):
    if report.when == "call":
        time.sleep(0.5)
'''


def test_a_request_line_written_after_its_response_stays_out_of_the_suites_output(tmp_path):
    (tmp_path / "test_one.py").write_text(ONE_REQUEST)
    (tmp_path / "slow_terminal.py").write_text(SLOW_TERMINAL)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.conftest", "-p", "slow_terminal",
         "--rootdir", str(tmp_path), str(tmp_path / "test_one.py")],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(tmp_path)])})
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    leaked = [line for line in (run.stdout + run.stderr).splitlines() if '"message":"request"' in line
              or "CloudWatchMetrics" in line]
    assert leaked == [], f"pytest's output between tests showed the gateway's lines: {leaked}"
