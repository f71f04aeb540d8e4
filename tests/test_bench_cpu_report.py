"""scripts/bench reports the server CPU per request beside the goal and LiteLLM Proxy's (issue 27).

Built from measured runs as the benchmark builds them (runner.Run, stats.summarize), so the
figures are the ones a run would show: the median over rounds of each round's server CPU
divided by the requests it served.
"""

from __future__ import annotations

from scripts.benchmark.compare import comparisons
from scripts.benchmark.report import markdown
from scripts.benchmark.runner import SCENARIOS, Run
from scripts.benchmark.stats import summarize
from scripts.benchmark.targets import LABELS

REQUESTS = 100


def _runs(target: str, server_ms_by_round: list[float]) -> list[Run]:
    return [Run(target, scenario.name, round_, [5.0] * REQUESTS, [1.0] * REQUESTS, 0, [], 1.0,
                {"server": ms * REQUESTS / 1000, "upstream": 0.01})
            for scenario in SCENARIOS for round_, ms in enumerate(server_ms_by_round)]


def _document(model: str) -> dict:
    rounds = {"direct": [0.0, 0.0, 0.0], "gateway": [0.9, 1.3, 0.8], "proxy": [12.0, 14.0, 13.0]}
    doc = {"meta": {"date": "2026-12-07 02:00 UTC", "command": "scripts/bench", "model": model, "git": "x",
                    "machine": {"nproc": 2, "cpu": "test"}, "python": "3.11", "versions": {"litellm": "1"},
                    "rounds": 3, "requests": REQUESTS, "warmup": 10},
           "targets": {}}
    for name, figures in rounds.items():
        runs = _runs(name, figures)
        doc["targets"][name] = {"label": LABELS[name], "software": "", "ready_s": 1.0, "peak_rss_mb": 90.0,
                                "skipped": {}, "scenarios": {s.name: summarize(r for r in runs if r.scenario == s.name)
                                                             for s in SCENARIOS}}
    comparisons(doc)
    return doc


def test_the_report_shows_server_cpu_per_request_beside_litellm_proxys_and_the_anthropic_paths_goal():
    doc = _document("anthropic/claude-sonnet-4-5")
    assert doc["server_cpu"]["gateway"]["nonstream_c1"] == 0.9, "not the median of the rounds"
    text = markdown(doc)
    assert "### Server CPU per request (ms, metering on, log line on)" in text
    assert f"| {LABELS['gateway']} | 0.90 (0.07x) | 0.90 (0.07x) | 0.90 (0.07x) |" in text
    assert f"| {LABELS['proxy']} | 13.00 | 13.00 | 13.00 |" in text
    goal = next(g for g in doc["goals"] if "server CPU per request, nonstream_c1" in g["goal"]
                and g["goal"].startswith(LABELS["gateway"]))
    assert goal["goal"].endswith("Anthropic path <= 1.0 ms") and goal["met"] is True
    assert goal["measured"] == "0.90 ms (LiteLLM Proxy 13.00 ms)"


def test_the_chat_completions_path_is_held_to_one_and_a_half_milliseconds():
    doc = _document("openai/gpt-4o-mini")
    goals = [g for g in doc["goals"] if "server CPU per request" in g["goal"]]
    assert goals and all(g["goal"].endswith("Chat Completions path <= 1.5 ms") for g in goals)
    assert "Goal on the Chat Completions path (`openai/gpt-4o-mini`)" in markdown(doc)


def test_the_report_names_the_machines_idle_tax_measured_in_the_same_run():
    doc = _document("anthropic/claude-sonnet-4-5")
    assert "idle tax" not in markdown(doc), "a tax that was not measured is not reported"
    doc["meta"]["machine"]["idle_tax"] = {"idle_ms": 10.0, "back_to_back_ms": 0.25, "after_idle_ms": 0.5, "ratio": 2.0}
    assert ("a fixed piece of work cost 0.250 ms of CPU back to back and 0.500 ms after 10 ms asleep (2.00x)"
            in markdown(doc))
