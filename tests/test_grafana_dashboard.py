"""deploy/grafana/spoton.json queries only metrics a real inference service exports, and the
README's metrics table documents exactly those it exports.

Every PromQL expression of the dashboard (panel targets and template-variable queries) is
parsed for the metric names it selects; each must be exposed on ``/metrics`` of the session's
live service, served by the same ``start_app_metrics`` call as serve.py makes. Labelled
metrics with no series yet (no sink delivered, no live camera pulled) still count: their
``# HELP``/``# TYPE`` lines are served from the start, and the name a query may use follows
from the type (a counter's ``_total``, a histogram's ``_bucket``/``_sum``/``_count``). The
facade exports no metrics, so none may be queried from it.

The README's table is the first one under the heading that starts with "## Metrics": one row
per metric, its exposed name (a counter's with ``_total``) in backticks in the first column.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from prometheus_client.parser import text_string_to_metric_families

from spoton_inference.embedded.ports import LOOPBACK, pick_free_port
from spoton_inference.serve import start_app_metrics

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[1]
DASHBOARD = REPO / "deploy" / "grafana" / "spoton.json"
README = REPO / "README.md"

# PromQL words that look like metric names but are not.
KEYWORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset"}
    | {"inf", "nan", "atan2", "start", "end"}
)
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_NAME_MATCHER = re.compile(r'__name__\s*=\s*"([^"]+)"')
_BRACES = re.compile(r"\{[^{}]*\}")  # label matchers
_BRACKETS = re.compile(r"\[[^\[\]]*\]")  # ranges and subqueries
_LABEL_LISTS = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_IDENTIFIER = re.compile(r"(?<![\w:.$])[A-Za-z_:][A-Za-z0-9_:]*")
# Grafana's label_values(metric, label) / label_values(metric{...}, label) template queries.
_LABEL_VALUES = re.compile(r"^\s*label_values\((.*),\s*[A-Za-z_][A-Za-z0-9_]*\s*\)\s*$", re.S)


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (function and aggregation names, label
    names, keywords, strings and durations left out)."""
    names = set(_NAME_MATCHER.findall(expr))
    text = _BRACES.sub(" ", _STRING.sub('""', expr))
    while True:  # nested subqueries: innermost first
        stripped = _BRACKETS.sub(" ", text)
        if stripped == text:
            break
        text = stripped
    text = _LABEL_LISTS.sub(" ", text)
    for match in _IDENTIFIER.finditer(text):
        rest = text[match.end() :].lstrip()
        if rest.startswith("(") or match.group() in KEYWORDS:
            continue  # a function or aggregation, or an operator word
        names.add(match.group())
    return names


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def dashboard_queries(dashboard: dict[str, Any]) -> list[str]:
    """Every PromQL expression: panel targets' ``expr`` and template variables' queries."""
    exprs = [node["expr"] for node in _walk(dashboard.get("panels", [])) if isinstance(node.get("expr"), str)]
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") != "query":
            continue
        query = variable.get("query")
        text = query.get("query", "") if isinstance(query, dict) else str(query or "")
        match = _LABEL_VALUES.match(text)
        exprs.append(match.group(1) if match else text)
    return exprs


def exposed_names(text: str) -> set[str]:
    """The series names ``text`` (Prometheus exposition) lets a query select, sampled or not."""
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
        "summary": ("", "_sum", "_count", "_created"),
        "info": ("_info",),
    }
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.update(sample.name for sample in family.samples)
        names.update(family.name + suffix for suffix in suffixes.get(family.type, ("",)))
    return names


def test_the_parser_finds_metric_names_only() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le, kind) (rate(a_seconds_bucket{kind="x", i=~"$i"}[$__rate_interval])))'
        " / ignoring(kind) group_left b_total + on (job) c offset 5m"
        ' + time() - max without (camera_id) (d_gauge[5m:1m]) * 1e3 > bool 2 and {__name__="e_total"}'
    )
    assert metric_names(expr) == {"a_seconds_bucket", "b_total", "c", "d_gauge", "e_total"}
    assert metric_names('count_values("by", f) or sum(g) by (h)') == {"f", "g"}


def test_a_histogram_is_queried_by_its_suffixed_series_only() -> None:
    text = "# HELP x_seconds d\n# TYPE x_seconds histogram\n# HELP y d\n# TYPE y counter\n"
    assert {"x_seconds_bucket", "x_seconds_sum", "x_seconds_count", "y_total"} <= exposed_names(text)
    assert not {"x_seconds", "y"} & exposed_names(text)


def documented_metrics(readme: str) -> list[str]:
    """The first column of the first table under the "## Metrics..." heading."""
    parts = re.split(r"^## Metrics.*$", readme, maxsplit=1, flags=re.M)
    assert len(parts) == 2, 'the README has no section whose heading starts with "## Metrics"'
    section = parts[1]
    section = re.split(r"^## ", section, maxsplit=1, flags=re.M)[0]
    names, in_table = [], False
    for line in section.splitlines():
        if line.startswith("|"):
            in_table = True
            match = re.match(r"\|\s*`([A-Za-z_:][A-Za-z0-9_:]*)`\s*\|", line)
            if match:
                names.append(match.group(1))
        elif in_table:
            break
    return names


@pytest_asyncio.fixture(scope="module")
async def scraped(live_service) -> str:
    """/metrics of the session's live service, served as serve.py serves it."""
    app, port = live_service.app, pick_free_port()
    server = start_app_metrics(app, LOOPBACK, port)
    try:
        async with httpx.AsyncClient() as http:
            reply = await http.get(f"http://{LOOPBACK}:{port}/metrics")
    finally:
        server.shutdown()
        server.server_close()
    reply.raise_for_status()
    return reply.text


async def test_every_metric_the_dashboard_queries_is_exported(scraped: str) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["schemaVersion"] >= 36
    assert any(v["type"] == "datasource" and v["query"] == "prometheus" for v in dashboard["templating"]["list"])
    queried = set().union(*map(metric_names, dashboard_queries(dashboard)))
    assert len(queried) > 10, queried
    missing = queried - exposed_names(scraped)
    assert not missing, f"the dashboard queries metrics /metrics does not export: {sorted(missing)}"


async def test_the_readme_documents_every_exported_metric(scraped: str) -> None:
    exported = {
        family.name + "_total" if family.type == "counter" else family.name
        for family in text_string_to_metric_families(scraped)
    }
    documented = documented_metrics(README.read_text())
    assert len(documented) == len(set(documented)), "a metric has two rows"
    assert not exported - set(documented), f"undocumented: {sorted(exported - set(documented))}"
    assert not set(documented) - exported, f"documented but not exported: {sorted(set(documented) - exported)}"
