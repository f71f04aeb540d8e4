"""What the figures mean against each other: added latency, ratios to LiteLLM Proxy, the issue's goals.

Ratios are target / LiteLLM Proxy, so below 1 is better for latency, time to
first byte and memory, and above 1 is better for throughput. The goals are
the ones issue 7 sets for the gateway with metering on, asked of the deployed
modes (Lambda buffered and streaming, each with its usage write) since issue 17;
the deferred-write uvicorn row keeps the others (floor, throughput, memory).
"""

from __future__ import annotations

from typing import Any

from .stats import added, ratio
from .targets import DEPLOYED, LABELS

# Issue 27: the gateway's server CPU per request, metering and the log line included, on the
# Anthropic path (an anthropic-type target) and the Chat Completions path (an OpenAI-compatible one).
CPU_GOALS_MS = {"anthropic/claude-sonnet-4-5": ("Anthropic", 1.0), "openai/gpt-4o-mini": ("Chat Completions", 1.5)}
CPU_TARGETS = ("gateway", "streaming", "lambda", "proxy", "floor")  # the rows of the CPU table, in order
CPU_GOAL_TARGETS = ("gateway", "streaming")  # served over HTTP as deployed: the server's CPU is the gateway's


def _scenario(doc: dict, target: str, scenario: str) -> dict:
    return doc["targets"].get(target, {}).get("scenarios", {}).get(scenario) or {}


def _throughput(doc: dict, target: str) -> float | None:
    return _scenario(doc, target, "nonstream_c16").get("throughput_rps")


def _ttfb(doc: dict, target: str) -> float | None:
    return (_scenario(doc, target, "stream_c1").get("ttfb_ms") or {}).get("p50")


def _rss(doc: dict, target: str) -> float | None:
    return doc["targets"].get(target, {}).get("peak_rss_mb")


def _median(values: list[float]) -> float | None:
    ordered = sorted(values)
    if not ordered:
        return None
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def server_cpu(doc: dict[str, Any]) -> dict[str, dict[str, float | None]]:
    """Server CPU ms per request, per target and load: the median over rounds of each round's
    process CPU divided by the requests it served (as issue 27 measures it)."""
    found: dict[str, dict[str, float | None]] = {}
    for name, target in doc["targets"].items():
        if name == "direct":
            continue
        found[name] = {load: _median([r["cpu_ms_per_request"]["server"] for r in summary["rounds"]
                                      if "server" in r.get("cpu_ms_per_request", {})])
                       for load, summary in target["scenarios"].items()}
    return found


def comparisons(doc: dict[str, Any]) -> None:
    """Fill doc["added"], doc["server_cpu"], doc["vs_proxy"], doc["vs_floor"] and doc["goals"]
    from the measured figures."""
    targets = doc["targets"]
    doc["server_cpu"] = server_cpu(doc)
    doc["added"] = {
        name: {"nonstream_c1_p50_ms": added(targets, name, "nonstream_c1"),
               "nonstream_c16_p50_ms": added(targets, name, "nonstream_c16"),
               "stream_c1_ttfb_p50_ms": added(targets, name, "stream_c1", "ttfb_ms")}
        for name in targets if name != "direct"
    }
    for reference, key in (("proxy", "vs_proxy"), ("floor", "vs_floor")):
        if reference not in targets:
            continue
        doc[key] = {
            name: {
                "added_p50_c1": ratio(doc["added"][name]["nonstream_c1_p50_ms"],
                                      doc["added"][reference]["nonstream_c1_p50_ms"]),
                "throughput_c16": ratio(_throughput(doc, name), _throughput(doc, reference)),
                "ttfb_p50_stream_c1": ratio(_ttfb(doc, name), _ttfb(doc, reference)),
                "peak_rss": ratio(_rss(doc, name), _rss(doc, reference)),
            }
            for name in targets if name not in ("direct", reference)
        }
    doc["goals"] = goals(doc)


def _goal(text: str, value: float | None, limit: float, *, at_least: bool = False, unit: str = "x") -> dict:
    met = None if value is None else (value >= limit if at_least else value <= limit)
    shown = "n/a" if value is None else (f"{value:.2f}{unit}" if unit == "x" else f"{value:.0f} {unit}")
    return {"goal": text, "measured": shown, "value": value, "met": met}


def _cpu_goals(doc: dict[str, Any]) -> list[dict[str, Any]]:
    goal = CPU_GOALS_MS.get(doc.get("meta", {}).get("model", ""))
    if goal is None:
        return []
    path, limit = goal
    found = []
    for name in (n for n in CPU_GOAL_TARGETS if n in doc.get("server_cpu", {})):
        for load, figure in doc["server_cpu"][name].items():
            if not load.startswith("nonstream"):
                continue  # the goal is a whole answer's; streams are shown in the CPU table
            proxy = doc["server_cpu"].get("proxy", {}).get(load)
            shown = "n/a" if figure is None else f"{figure:.2f} ms" + (
                f" (LiteLLM Proxy {proxy:.2f} ms)" if proxy is not None else "")
            found.append({"goal": f"{LABELS[name]}: server CPU per request, {load}, {path} path <= {limit} ms",
                          "measured": shown, "value": figure, "met": None if figure is None else figure <= limit})
    return found


def goals(doc: dict[str, Any]) -> list[dict[str, Any]]:
    found = _cpu_goals(doc)
    for name in (name for name in DEPLOYED if name in doc["targets"]):
        deployed = doc.get("vs_proxy", {}).get(name, {})
        found += [
            _goal(f"{LABELS[name]}: added p50 at c=1 <= 0.5x LiteLLM Proxy's", deployed.get("added_p50_c1"), 0.5),
            _goal(f"{LABELS[name]}: streamed TTFB p50 at c=1 <= 0.5x LiteLLM Proxy's",
                  deployed.get("ttfb_p50_stream_c1"), 0.5),
        ]
    vs_proxy = doc.get("vs_proxy", {}).get("gateway", {})
    vs_floor = doc.get("vs_floor", {}).get("gateway", {})
    uvicorn = LABELS["gateway"]
    found += [
        _goal(f"{uvicorn}: added p50 at c=1 <= 0.5x LiteLLM Proxy's", vs_proxy.get("added_p50_c1"), 0.5),
        _goal(f"{uvicorn}: added p50 at c=1 <= 1.5x the bare-litellm floor's", vs_floor.get("added_p50_c1"), 1.5),
        _goal(f"{uvicorn}: throughput at c=16 >= 2.5x LiteLLM Proxy's", vs_proxy.get("throughput_c16"), 2.5,
              at_least=True),
        _goal(f"{uvicorn}: streamed TTFB p50 at c=1 <= 0.5x LiteLLM Proxy's", vs_proxy.get("ttfb_p50_stream_c1"),
              0.5),
        _goal(f"{uvicorn}: peak RSS under load <= 300 MB", _rss(doc, "gateway"), 300, unit="MB"),
    ]
    cold = doc.get("cold_start")
    if cold:
        found.append(_goal("cold start: import <= 1.1x bare `import litellm`", cold["ratio_import"], 1.1))
        found.append(_goal("cold start: import + first request <= 1.1x bare litellm's",
                           cold["ratio_import_and_first_request"], 1.1))
    for target, checks in doc.get("aws_calls", {}).items():
        # At most one write per request: a write that overlaps another's shares its transaction
        # (group commit), so under uvicorn it is often less. A key with limits adds its reservation,
        # one UpdateItem per request (a new minute's first request needs a second, hence the allowance).
        # Below the floor, a write or a reservation went missing.
        for check, floor, ceiling in (("no_limits", 0.01, 1.0), ("with_limits", 1.0, 2.1)):
            measured = checks.get(check, {}).get("dynamodb")
            goal = f"{target}: DynamoDB calls per request, key {check.replace('_', ' ')} <= {round(ceiling)}"
            met = None if measured is None else floor - 1e-9 <= measured <= ceiling + 1e-9
            found.append({"goal": goal, "measured": "n/a" if measured is None else f"{measured:.2f}",
                          "value": measured, "met": met})
        secrets = [c.get("secretsmanager") for c in checks.values() if c.get("secretsmanager") is not None]
        worst = max(secrets) if secrets else None
        found.append({"goal": f"{target}: Secrets Manager calls per request when warm == 0",
                      "measured": "n/a" if worst is None else f"{worst:.2f}", "value": worst,
                      "met": None if worst is None else worst == 0})
    return found
