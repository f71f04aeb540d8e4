"""The results document as markdown: one table per load, then memory, ratios, goals, AWS calls, cold start.

Everything shown is read from the document that --json writes, so the two
never disagree.
"""

from __future__ import annotations

from typing import Any

from .runner import SCENARIOS

NA = "—"


def _n(value: float | None, digits: int = 1, suffix: str = "") -> str:
    return NA if value is None else f"{value:.{digits}f}{suffix}"


def _signed(value: float | None) -> str:
    return NA if value is None else f"{value:+.1f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|",
            *("| " + " | ".join(row) + " |" for row in rows)]


def _cpu(summary: dict, name: str) -> str:
    return _n(summary["cpu_ms_per_request"].get(name), 2)


def _load_tables(doc: dict) -> list[str]:
    lines: list[str] = []
    targets = doc["targets"]
    for scenario in SCENARIOS:
        cpu_header = ["req/s", "server CPU ms/req", "fake CPU ms/req", "moto CPU ms/req", "client CPU ms/req"]
        if scenario.stream:
            header = ["target", "TTFB p50 ms", "TTFB p90", "TTFB p99", "added TTFB p50", "total p50 ms",
                      *cpu_header, "errors"]
        else:
            header = ["target", "p50 ms", "p90", "p99", "added p50", *cpu_header, "requests", "errors"]
        rows = []
        for name, target in targets.items():
            summary = target["scenarios"].get(scenario.name)
            if summary is None:
                reason = target.get("skipped", {}).get(scenario.name, "not run")
                rows.append([target["label"], *([NA] * (len(header) - 2)), reason])
                continue
            latency, ttfb = summary["latency_ms"], summary["ttfb_ms"]
            added = doc["added"].get(name, {})
            common = [_n(summary["throughput_rps"]), _cpu(summary, "server"), _cpu(summary, "upstream"),
                      _cpu(summary, "moto"), _cpu(summary, "client")]
            if scenario.stream:
                rows.append([target["label"], _n(ttfb["p50"]), _n(ttfb["p90"]), _n(ttfb["p99"]),
                             _signed(added.get("stream_c1_ttfb_p50_ms")), _n(latency["p50"]),
                             *common, str(summary["errors"])])
            else:
                key = f"{scenario.name}_p50_ms"
                rows.append([target["label"], _n(latency["p50"]), _n(latency["p90"]), _n(latency["p99"]),
                             _signed(added.get(key)), *common, f"{summary['requests']}",
                             str(summary["errors"])])
        lines += [f"### {scenario.label}", "", *_table(header, rows), ""]
    return lines


def _error_lines(doc: dict) -> list[str]:
    """The first failures of each run that had any: a benchmark with errors measured something else."""
    lines = []
    for target in doc["targets"].values():
        for name, summary in target["scenarios"].items():
            if summary["errors"]:
                lines.append(f"- {target['label']}, {name}: {summary['errors']} errors, e.g. "
                             + "; ".join(f"`{sample}`" for sample in summary["error_samples"]))
    return ["### Errors", "", *lines, ""] if lines else []


def _spread_table(doc: dict) -> list[str]:
    """Per-round p50 and throughput: how much the machine drifted while the targets were compared."""
    rows = []
    for target in doc["targets"].values():
        for name, summary in target["scenarios"].items():
            p50s = [r["p50_ms"] for r in summary["rounds"] if r["p50_ms"] is not None]
            rates = [r["throughput_rps"] for r in summary["rounds"] if r["throughput_rps"] is not None]
            if p50s and rates:
                rows.append([target["label"], name, f"{min(p50s):.1f}–{max(p50s):.1f}",
                             f"{min(rates):.0f}–{max(rates):.0f}"])
    header = ["target", "load", "p50 ms, min–max over rounds", "req/s, min–max over rounds"]
    return ["### Spread across rounds", "", *_table(header, rows), ""]


def _memory_table(doc: dict) -> list[str]:
    rows = [[t["label"], t["software"], _n(t.get("peak_rss_mb"), 0), _n(t.get("ready_s"), 1)]
            for t in doc["targets"].values()]
    shared = doc.get("shared", {})
    rows += [[f"({name})", "", _n(mb, 0), NA] for name, mb in shared.items()]
    return ["### Memory and start", "", *_table(["target", "software", "peak RSS MB", "ready after s"], rows), ""]


def _ratio_table(doc: dict, key: str, title: str) -> list[str]:
    found = doc.get(key)
    if not found:
        return []
    rows = [[doc["targets"][name]["label"], _n(r["added_p50_c1"], 2), _n(r["throughput_c16"], 2),
             _n(r["ttfb_p50_stream_c1"], 2), _n(r["peak_rss"], 2)] for name, r in found.items()]
    header = ["target", "added p50 c=1", "req/s c=16", "TTFB p50 streamed", "peak RSS"]
    return [f"### {title}", "", *_table(header, rows), ""]


def _cpu_table(doc: dict) -> list[str]:
    """Server CPU per request beside LiteLLM Proxy's and the goal (issue 27): what a function
    pays in CPU for each request it serves, metering and the log line included."""
    from .compare import CPU_GOALS_MS, CPU_TARGETS

    found = doc.get("server_cpu")
    if not found:
        return []
    loads = [s.name for s in SCENARIOS]
    proxy = found.get("proxy", {})
    rows = []
    for name in (n for n in CPU_TARGETS if n in found):
        cells = []
        for load in loads:
            figure = found[name].get(load)
            versus = proxy.get(load) if name != "proxy" else None
            cells.append(_n(figure, 2) + (f" ({figure / versus:.2f}x)" if figure is not None and versus else ""))
        rows.append([doc["targets"][name]["label"], *cells])
    goal = CPU_GOALS_MS.get(doc["meta"]["model"])
    note = (f"Goal on the {goal[0]} path (`{doc['meta']['model']}`), whole answers: at most {goal[1]} ms. "
            if goal is not None else "") + (
        "Median over rounds of the server's process CPU in a round divided by the requests it served; "
        "in brackets, the ratio to LiteLLM Proxy's. The deployed modes' rows are their function process "
        "alone: Lambda's side (the Runtime API, API Gateway or the Web Adapter) runs in a process of its own.")
    return ["### Server CPU per request (ms, metering on, log line on)", "", note + _idle_tax_note(doc), "",
            *_table(["target", *loads], rows), ""]


def _idle_tax_note(doc: dict) -> str:
    """The machine's idle tax in the same run (scripts/benchmark/idle_tax.py), where it was measured."""
    tax = doc["meta"]["machine"].get("idle_tax")
    if not tax:
        return ""
    return (f" The deployed modes' function idles before each request, for the last one's usage write, "
            f"as one execution environment does; LiteLLM Proxy and the uvicorn target are served back to back. "
            f"On this machine, in this run, a fixed piece of work cost {tax['back_to_back_ms']:.3f} ms of CPU "
            f"back to back and {tax['after_idle_ms']:.3f} ms after {tax['idle_ms']:g} ms asleep "
            f"({tax['ratio']:.2f}x): the idle tax (`python -m scripts.benchmark.idle_tax`).")


def _goals_table(doc: dict) -> list[str]:
    marks = {True: "yes", False: "**no**", None: NA}
    rows = [[g["goal"], g["measured"], marks[g["met"]]] for g in doc.get("goals", [])]
    return ["### Goals (issues 7, 17 and 27), metering on", "", *_table(["goal", "measured", "met"], rows), ""]


def _aws_table(doc: dict) -> list[str]:
    rows = []
    for target, checks in doc.get("aws_calls", {}).items():
        for check, found in checks.items():
            operations = ", ".join(f"{op} {n}" for op, n in found.get("operations", {}).items())
            rows.append([doc["targets"][target]["label"], check.replace("_", " "), str(found.get("requests")),
                         _n(found.get("dynamodb"), 2), _n(found.get("secretsmanager"), 2), operations or NA,
                         str(found.get("errors"))])
    if not rows:
        return []
    header = ["target", "key", "requests", "DynamoDB / req", "Secrets Manager / req", "calls", "errors"]
    return ["### AWS calls per request (warm process, botocore hook)", "", *_table(header, rows), ""]


def _cold_table(doc: dict) -> list[str]:
    cold = doc.get("cold_start")
    if not cold:
        return []
    labels = {"litellm": "bare `import litellm` + one acreate", "gateway": "handler.lambda_function + one invoke"}
    rows = []
    for mode in ("litellm", "gateway"):
        m = cold[mode]["median"]
        rows.append([labels[mode], _n(m["import_s"], 2), _n(m["first_request_s"], 3),
                     _n(m["import_and_first_request_s"], 2), _n(m["process_s"], 2), _n(m["peak_rss_mb"], 0)])
    rows.append(["ratio gateway / litellm", _n(cold["ratio_import"], 2), NA,
                 _n(cold["ratio_import_and_first_request"], 2), NA, NA])
    header = ["fresh process", "import s", "first request s", "import + first s", "whole process s", "peak RSS MB"]
    return [f"### Cold start (median of {cold['samples']} fresh processes each)", "", *_table(header, rows), ""]


def _profile_lines(doc: dict) -> list[str]:
    found = doc.get("profile")
    if not found:
        return []
    title = (f"### Profile: gateway, {found.get('load', 'non-streamed, c=16')} ({found['requests']} requests, "
             f"{found['samples']} samples at {found['rate_hz']} Hz, "
             f"{_n(found['server_cpu_ms_per_request'], 2)} CPU ms/req)")
    lines = [title, ""]
    for title, key in (("what a request pays for (inclusive)", "areas"),
                       ("what the loop and its threads ran (inclusive)", "activities"),
                       ("by library (self time)", "components"), ("self time", "self"),
                       ("inclusive, gateway code", "handler_inclusive"), ("inclusive, all", "inclusive")):
        rows = [[f"`{entry['frame']}`", f"{entry['percent']:.1f}%"] for entry in found.get(key, [])[:15]]
        lines += [f"{title}:", "", *_table(["frame", "samples"], rows), ""]
    lines.append(f"Collapsed stacks: {found['collapsed_stacks']}")
    return lines + [""]


def markdown(doc: dict[str, Any]) -> str:
    meta = doc["meta"]
    head = [
        f"## Benchmark {meta['date']}",
        "",
        f"`{meta['command']}` on {meta['machine']['nproc']} cores ({meta['machine']['cpu']}), "
        f"Python {meta['python']}, litellm {meta['versions']['litellm']}"
        + (f", LiteLLM Proxy {meta['proxy_litellm']}" if meta.get("proxy_litellm") else "")
        + f"; git {meta['git']}. Rounds: {meta['rounds']}, each with {meta['requests']} measured requests "
        f"per target and load after {meta['warmup']} warm-up requests; model `{meta['model']}`; all on "
        "loopback, one worker each, targets interleaved. Latencies in ms; added = target minus direct, same "
        "load, same run. CPU per request from /proc: server = the target's processes, fake = the upstream, "
        "moto = the DynamoDB/Secrets Manager stand-in (metering targets), client = the load generator. "
        "The Lambda path buffers streams (Mangum), so its time to first byte is its total; it serves one "
        "request per execution environment, so it has no c=16 row.",
        "",
    ]
    body = (_load_tables(doc) + _error_lines(doc) + _spread_table(doc) + _memory_table(doc)
            + _ratio_table(doc, "vs_proxy", "Ratios: target / LiteLLM Proxy")
            + _ratio_table(doc, "vs_floor", "Ratios: target / bare-litellm floor")
            + _cpu_table(doc) + _goals_table(doc) + _aws_table(doc) + _cold_table(doc) + _profile_lines(doc))
    return "\n".join(head + body)
