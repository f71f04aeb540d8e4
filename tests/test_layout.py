"""handler/'s layout holds: a few modules at the top, wings whose imports run one way.

The figures come from scripts/wings.py, which reads every import with `ast`
(lazy and TYPE_CHECKING imports included), so a change that makes two wings
import each other fails here, naming the imports that close the circle.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _wings():
    spec = importlib.util.spec_from_file_location("wings", ROOT / "scripts" / "wings.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_handler_keeps_few_top_modules_and_wings_whose_imports_run_one_way():
    wings = _wings()
    report = wings.survey()
    assert wings.problems(report) == [], "the layout's figures are out of bounds"
    assert len(report["top_modules"]) <= 10 and len(report["wings"]) >= 4
    assert report["wing_cycles"] == [] and report["longest_module"]["lines"] <= 500


def test_the_survey_sees_a_cycle_between_wings(tmp_path, monkeypatch):
    """The check can fail: two wings that import each other are reported with the imports."""
    wings = _wings()
    package = tmp_path / "handler"
    for wing, imports in {"low": "from ..high import top", "high": "from ..low import bottom"}.items():
        (package / wing).mkdir(parents=True)
        (package / wing / "__init__.py").write_text("")
        (package / wing / ("bottom.py" if wing == "low" else "top.py")).write_text(imports + "\n")
    (package / "__init__.py").write_text("")
    monkeypatch.setattr(wings, "ROOT", tmp_path)
    monkeypatch.setattr(wings, "PACKAGE", package)
    report = wings.survey()
    assert [cycle["wings"] for cycle in report["wing_cycles"]] == [["high", "low"]]
    assert any("import each other" in problem for problem in wings.problems(report))


def test_the_entry_points_stay_where_the_contract_puts_them():
    code = ("import handler.app, handler.lambda_function, handler.admin; "
            "assert callable(handler.lambda_function.lambda_handler) and handler.app.app is not None; "
            "assert callable(handler.admin.main)")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
