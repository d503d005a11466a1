"""docs/operations.md and its files name only metrics the endpoint exposes.

The Grafana dashboard (``docs/grafana-dashboard.json``) must parse and chart every metric
family; the alert rules (``docs/prometheus-alerts.yml``) must each have their fields and
name existing metrics; the metric table of ``docs/operations.md`` must be
``tickactors._feed.metrics.METRICS`` exactly (name, type, labels). "Exposed" means a
sample name of a family the collector describes, or of the process collectors the
runner's endpoint adds. No PromQL engine here: expressions are checked for the names
they use and for balanced brackets.
"""

from __future__ import annotations

import ast
import json
import re
import textwrap
from pathlib import Path

from prometheus_client import ProcessCollector

import tickactors
from tickactors._feed.metrics import METRICS

DOCS = Path(tickactors.__file__).resolve().parents[2] / "docs"
OPERATIONS = DOCS / "operations.md"
_NAME = re.compile(r"\b((?:tickactors|process|python)_[a-z_]+)\b")


def exposed() -> set[str]:
    names = {name for spec in METRICS for name in spec.sample_names}
    for family in ProcessCollector(registry=None).collect():
        names.update(sample.name for sample in family.samples)
    return names


def check_expression(expr: str, where: str) -> set[str]:
    """The metric names in ``expr``; fails on an unknown one or unbalanced brackets."""
    names = set(_NAME.findall(re.sub(r'"[^"]*"', '""', expr)))  # not inside label values
    assert names, f"{where}: names no metric: {expr}"
    unknown = names - exposed()
    assert not unknown, f"{where}: {sorted(unknown)} not exposed: {expr}"
    for opening, closing in ("()", "{}", "[]"):
        assert expr.count(opening) == expr.count(closing), f"{where}: unbalanced {opening}"
    return names


def family_of(sample: str) -> str:
    for spec in METRICS:
        if sample in spec.sample_names:
            return spec.name
    return sample


def test_the_dashboard_parses_and_charts_every_family():
    dashboard = json.loads((DOCS / "grafana-dashboard.json").read_text())
    assert dashboard["title"] and dashboard["uid"] and dashboard["schemaVersion"] >= 30
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert {"datasource", "feed", "instance"} <= variables
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    charted: set[str] = set()
    for panel in dashboard["panels"]:
        assert {"h", "w", "x", "y"} <= panel["gridPos"].keys()
        if panel["type"] == "row":
            continue
        assert panel["title"] and panel["targets"], panel
        for target in panel["targets"]:
            names = check_expression(target["expr"], panel["title"])
            charted.update(family_of(name) for name in names)
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            check_expression(variable["definition"], variable["name"])
    assert {spec.name for spec in METRICS} <= charted


def alert_rules() -> list[dict[str, str]]:
    """The rules of docs/prometheus-alerts.yml, read as the file writes them: ``- alert:``
    starts a rule, every other ``key: value`` line belongs to it (values on one line)."""
    rules: list[dict[str, str]] = []
    for line in (DOCS / "prometheus-alerts.yml").read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        key, _, text = stripped.removeprefix("- ").partition(":")
        if key == "alert":
            rules.append({})
        if rules:
            rules[-1][key] = text.strip().strip('"')
    return rules


def test_every_alert_rule_is_whole_and_names_exposed_metrics():
    text = (DOCS / "prometheus-alerts.yml").read_text()
    assert text.splitlines()[:1] != [] and "groups:" in text and "rules:" in text
    assert "\t" not in text
    rules = alert_rules()
    assert len(rules) >= 5
    for rule in rules:
        assert {"alert", "expr", "severity", "summary", "description"} <= rule.keys(), rule
        assert rule["severity"] in ("warning", "critical"), rule
        check_expression(rule["expr"], rule["alert"])
    topics = " ".join(rule["expr"] for rule in rules)
    for metric in (
        "tickactors_last_message_age_seconds",  # stale connection
        "tickactors_reconnects_total",  # reconnect storm
        "tickactors_dropped_total",  # drops
        "tickactors_token_consecutive_failures",  # token renewal failing
        'outcome="timed_out"',  # requests timing out
    ):
        assert metric in topics, metric
    # operations.md's table lists exactly these alerts
    table = re.findall(r"^\| `(Tickactors\w+)` \|", OPERATIONS.read_text(), re.M)
    assert table == [rule["alert"] for rule in rules]


def test_the_metric_table_is_what_the_collector_exposes():
    rows = re.findall(r"^\| `(tickactors_\w+)` \| (\w+) \|([^|]*)\|", OPERATIONS.read_text(), re.M)
    table = [(name, kind, tuple(re.findall(r"`(\w+)`", labels))) for name, kind, labels in rows]
    expected = [
        (spec.sample_names[0] if spec.type == "counter" else spec.name, spec.type, spec.labels)
        for spec in METRICS
    ]
    assert table == expected


def test_the_library_snippet_is_python_and_uses_public_names():
    text = OPERATIONS.read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks
    for block in blocks:
        tree = ast.parse("async def _() -> None:\n" + textwrap.indent(block, "    "))
        for node in ast.walk(tree):
            value = node.value if isinstance(node, ast.Attribute) else None
            if isinstance(value, ast.Name) and value.id == "tickactors":
                assert isinstance(node, ast.Attribute) and node.attr in tickactors.__all__
