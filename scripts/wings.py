"""Check handler/'s layout: few top-level modules, wings whose imports run one way.

Reads every module's imports with `ast` (lazy imports inside functions and
TYPE_CHECKING imports count too: a cycle hidden in a function is still a
cycle), maps each module to its wing (the first folder under handler/, or the
module itself when it sits at the top), and reports the four figures the
layout keeps: modules at the top, wings, cycles between wings, the longest
module. Exits 1 when a figure is out of bounds, so the suite can hold it.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "handler"
MAX_TOP_MODULES = 10
MIN_WINGS = 4
MAX_MODULE_LINES = 500


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, name: str, known: set[str]) -> set[str]:
    """The handler modules `path` imports (a name imported from a package counts as its module
    when it is one, else as the package)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] == "handler")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            if source.split(".")[0] != "handler":
                continue
            for alias in node.names:
                candidate = f"{source}.{alias.name}"
                found.add(candidate if candidate in known else source)
    return found - {name}


def wing_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "handler"


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan's, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph.get(nxt, ())))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def survey() -> dict:
    paths = sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)
    names = {module_name(p): p for p in paths}
    known = set(names)
    imports = {name: imported_modules(path, name, known) for name, path in names.items()}
    # A wing is a folder under handler/; a module at the top is a wing of its own.
    wing = {name: (name.split(".")[1] if len(name.split(".")) > 2 or names[name].name == "__init__.py"
                   and name != "handler" else name.split(".")[-1]) for name in names}
    wing["handler"] = "handler"
    wing_graph: dict[str, set[str]] = {w: set() for w in wing.values()}
    edges: dict[tuple[str, str], list[str]] = {}
    for name, targets in imports.items():
        for target in targets:
            a, b = wing[name], wing.get(target, target)
            if a != b and name != "handler" and target != "handler":
                wing_graph[a].add(b)
                edges.setdefault((a, b), []).append(f"{name} -> {target}")
    top = [n for n, p in names.items() if p.parent == PACKAGE and p.name != "__init__.py"]
    folders = sorted({p.relative_to(PACKAGE).parts[0] for p in paths if len(p.relative_to(PACKAGE).parts) > 1})
    lines = {name: len(path.read_text().splitlines()) for name, path in names.items()}
    longest = max(lines, key=lines.get)
    wing_cycles = cycles(wing_graph)
    return {
        "top_modules": sorted(top),
        "wings": folders,
        "wing_imports": {w: sorted(t) for w, t in sorted(wing_graph.items())},
        "wing_cycles": [{"wings": c, "imports": [i for (a, b), found in edges.items()
                                                 if a in c and b in c for i in found]} for c in wing_cycles],
        "module_cycles": cycles(imports),
        "longest_module": {"module": longest, "lines": lines[longest]},
        "modules": len(names),
    }


def problems(report: dict) -> list[str]:
    found = []
    if len(report["top_modules"]) > MAX_TOP_MODULES:
        found.append(f"{len(report['top_modules'])} modules at the top of handler/ (at most {MAX_TOP_MODULES})")
    if len(report["wings"]) < MIN_WINGS:
        found.append(f"{len(report['wings'])} wings (at least {MIN_WINGS})")
    for cycle in report["wing_cycles"]:
        found.append(f"wings import each other: {' <-> '.join(cycle['wings'])} ({'; '.join(cycle['imports'])})")
    if report["longest_module"]["lines"] > MAX_MODULE_LINES:
        found.append(f"{report['longest_module']['module']} has {report['longest_module']['lines']} lines "
                     f"(at most {MAX_MODULE_LINES})")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/wings", description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print the whole survey as JSON")
    args = parser.parse_args(argv)
    report = survey()
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"modules: {report['modules']}; at the top of handler/: {len(report['top_modules'])} "
              f"({', '.join(report['top_modules'])})")
        print(f"wings: {len(report['wings'])} ({', '.join(report['wings'])})")
        for wing, targets in report["wing_imports"].items():
            print(f"  {wing} imports {', '.join(targets) or 'nothing of the gateway'}")
        print(f"cycles between wings: {len(report['wing_cycles'])}; between modules: {len(report['module_cycles'])}")
        print(f"longest module: {report['longest_module']['module']} ({report['longest_module']['lines']} lines)")
    found = problems(report)
    for problem in found:
        print(f"problem: {problem}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
