"""The stack's bill (scripts/benchmark/cost_model.py): at rest, per request, and the memory size it picks.

The model is pure: prices, the template's shape and the measured figures in,
dollars out. These hold it to AWS's billing rules as its pricing pages state
them, and hold template.yaml to an idle bill of at most $5 a month.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from scripts.benchmark.cost import BENCH, load_template, measured, stack_from_template
from scripts.benchmark.cost_model import (MONTH_S, PRICES, added_latency_ms, cpu_share, monthly_bill,
                                          smallest_memory, xray_traces)

VOLUMES = (0, 100_000, 1_000_000, 10_000_000)


@pytest.fixture(scope="module")
def template():
    return load_template()


@pytest.fixture(scope="module")
def stack(template):
    return stack_from_template(template)


@pytest.fixture(scope="module")
def figures(template):
    return measured(template)


def test_a_deployed_stack_with_no_requests_costs_at_most_5_usd_a_month(stack, figures):
    idle = monthly_bill(0, stack, figures)
    assert sum(idle.values()) <= 5.0, f"an idle stack costs ${sum(idle.values()):.2f} a month: {idle}"
    # What is left at rest: the two secrets, the dashboard and the alarms, nothing per request.
    assert {name for name, usd in idle.items() if usd} == {"Secrets Manager", "CloudWatch dashboard and rules",
                                                          "CloudWatch alarms"}


def test_snapstart_snapshots_are_billed_at_rest_per_version_kept(stack, figures):
    on = replace(stack, snapstart=True, versions_kept=2)
    gb = stack.memory_mb / 1024
    cached = 2 * gb * MONTH_S * PRICES["snapstart_cache_gb_s"].usd
    assert monthly_bill(0, on, figures)["SnapStart"] == pytest.approx(cached)
    assert sum(monthly_bill(0, on, figures).values()) > 5.0, "SnapStart on would break the idle budget"
    assert monthly_bill(0, stack, figures)["SnapStart"] == 0


def test_metrics_cost_nothing_at_rest_and_their_count_once_traffic_comes_every_hour(stack, figures):
    """CloudWatch prorates a custom metric by the hour it is sent: none sent, none billed."""
    metric = PRICES["cw_metric"].usd
    assert monthly_bill(0, stack, figures)["CloudWatch metrics"] == 0
    for requests in VOLUMES[1:]:
        assert monthly_bill(requests, stack, figures)["CloudWatch metrics"] == pytest.approx(
            stack.custom_metrics * metric)
    assert stack.custom_metrics <= 9, "the metric set is the service's few series, not one per model or key"


def test_lambda_duration_is_the_answer_s_time_at_the_memory_size(stack, figures):
    bill = monthly_bill(1_000_000, stack, figures)["Lambda requests and duration"]
    gb_s = 1_000_000 * (figures.answer_s + figures.write_ms / 1000) * stack.memory_mb / 1024
    assert bill == pytest.approx(gb_s * PRICES["lambda_gb_s_arm64"].usd + 0.20, rel=0.01)
    # The figure: about $68 per million 5 s requests at 1,024 MB.
    assert monthly_bill(1_000_000, replace(stack, memory_mb=1024), figures)["Lambda requests and duration"] \
        == pytest.approx(68, abs=1.5)


def test_every_request_priced_component_grows_with_the_requests(stack, figures):
    bills = [monthly_bill(n, stack, figures) for n in VOLUMES]
    for component in ("Lambda requests and duration", "API Gateway", "DynamoDB writes", "CloudWatch logs",
                      "X-Ray"):
        assert [b[component] for b in bills] == sorted(b[component] for b in bills), component
        assert bills[0][component] == 0 and bills[-1][component] > 0, component
    assert bills[-1]["API Gateway"] == pytest.approx(10.0)  # HTTP API: $1.00 per million
    assert monthly_bill(10_000_000, replace(stack, api="rest"), figures)["API Gateway"] == pytest.approx(35.0)


def test_x_ray_records_the_first_request_each_second_and_5_percent_of_the_rest():
    assert xray_traces(0) == 0
    assert xray_traces(100_000) == 100_000  # fewer than one a second: all of them
    ten_million = xray_traces(10_000_000)
    assert ten_million == pytest.approx(MONTH_S + 0.05 * (10_000_000 - MONTH_S))


def test_lambda_cpu_share_is_one_vcpu_at_1769_mb_and_proportional_below():
    assert cpu_share(1769) == 1.0 and cpu_share(3538) == 1.0
    assert cpu_share(512) == pytest.approx(512 / 1769)
    # The CPU part of the added latency stretches by the share, the waits do not.
    assert added_latency_ms(1769, cpu_ms=2.0, added_ms=3.0) == pytest.approx(3.0)
    assert added_latency_ms(512, cpu_ms=2.0, added_ms=3.0) == pytest.approx(1.0 + 2.0 * 1769 / 512)


def test_the_memory_size_is_the_smallest_within_half_the_peer_s_latency_with_twice_the_peak_rss():
    chosen = smallest_memory(cpu_ms=BENCH["cpu_ms"], added_ms=BENCH["added_ms"],
                             peer_added_ms=BENCH["peer_added_ms"], peak_rss_mb=BENCH["peak_rss_mb"])
    assert chosen == 512
    assert added_latency_ms(chosen, BENCH["cpu_ms"], BENCH["added_ms"]) <= 0.5 * BENCH["peer_added_ms"]
    assert added_latency_ms(chosen - 64, BENCH["cpu_ms"], BENCH["added_ms"]) > 0.5 * BENCH["peer_added_ms"]
    # Less CPU per request: memory is bound by the RSS headroom instead.
    assert smallest_memory(cpu_ms=1.0, added_ms=1.2, peer_added_ms=21.3, peak_rss_mb=98) == 256
    assert smallest_memory(cpu_ms=1.0, added_ms=1.2, peer_added_ms=21.3,
                           peak_rss_mb=BENCH["litellm_path_peak_rss_mb"]) == 640


def test_the_stack_read_from_the_template_is_what_it_deploys(template, stack):
    alarms = [r for r in template["Resources"].values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    assert stack.alarm_metrics == len(alarms) and stack.secrets == 2 and stack.dashboards == 1
    assert stack.insight_rules == 0 and not stack.snapstart and stack.memory_mb == 512
