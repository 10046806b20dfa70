"""The operator view in template.yaml: the dashboard shows every metric the code emits, with the exact
dimension set it is emitted with, and the alarms watch those metrics.

CloudWatch finds an EMF metric only by its full dimension set, so a renamed metric or an added dimension
leaves a dashboard line (or an alarm) silently empty. The emitted names and dimensions are read from the
code itself (an AST scan of every `metrics.emit/seconds/milliseconds` call in shared/ and functions/);
metrics whose emit calls are not written yet are checked against the shared contract (CONTRACT below).
The template is rendered as CloudFormation would for given parameters: intrinsics (`!Sub`, `!If`,
conditions, ...) are evaluated by a small resolver, then the dashboard body is parsed as JSON.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

import pytest
import yaml

from shared import metrics, webhooks
from shared.launcher import CallSource
from shared.policy import BUSY, DECLINE
from shared.settings import VoiceApi

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_FILE = ROOT / "template.yaml"
STACK, REGION, ACCOUNT = "hello-ops", "eu-west-1", "123456789012"

# The contract for metrics whose emit calls land with other changes (dimension sets without `service`,
# which every data point carries): once a call is in the code, the code's dimensions are checked instead.
CONTRACT: dict[str, frozenset[str]] = {
    metrics.TOOL_ERRORS: frozenset(),
    metrics.CALLS_LIMITED: frozenset({"limit"}),
    metrics.DAILY_MINUTES_USED: frozenset(),
    metrics.RECORD_WRITE_FAILURES: frozenset(),
}
# Values of dimensions the code computes at run time (each one gets its own line on the dashboard).
VALUES: dict[tuple[str, str], frozenset[str]] = {
    (metrics.CALLS_REJECTED, "sip_status"): frozenset({str(DECLINE), str(BUSY)}),
    (metrics.CALL_DURATION, "source"): frozenset(get_args(CallSource)),
    (metrics.CALLS_LIMITED, "limit"): frozenset({"client_hourly", "daily_minutes"}),
    (metrics.SIGNATURE_REJECTED, "reason"): frozenset(webhooks.REJECT_REASONS),
    # The API of a call (shared/upstream.py call_api), on every metric that knows the call.
    **{
        (name, "api"): frozenset(get_args(VoiceApi))
        for name in (
            metrics.CALLS_STARTED,
            metrics.CALLS_ACCEPTED,
            metrics.CALLS_REJECTED,
            metrics.ACCEPT_FAILURES,
            metrics.WEBHOOK_TO_ACCEPT,
            metrics.DUPLICATES_SUPPRESSED,
            metrics.OBSERVER_HANDOFFS,
            metrics.CALL_DURATION,
            metrics.WEBHOOKS_IGNORED,
        )
    },
}


# Combinations of run-time values that cannot happen: an outbound call is always a GPT-Live call.
IMPOSSIBLE: frozenset[frozenset[tuple[str, str]]] = frozenset(
    {frozenset({("source", "outbound"), ("api", "realtime")})}
)


# ---- the template, rendered ---------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """Keeps CloudFormation short forms as their long forms (`!Sub x` -> {"Fn::Sub": x}) to evaluate them."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_Loader.add_multi_constructor("!", _intrinsic)
TEMPLATE: dict[str, Any] = yaml.load(TEMPLATE_FILE.read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506


@dataclass
class Stack:
    """The template as deployed with `parameters`: conditions decided, intrinsics resolved."""

    parameters: dict[str, str]
    conditions: dict[str, bool]
    resources: dict[str, dict[str, Any]]
    outputs: dict[str, Any]


def render(**overrides: str) -> Stack:
    params = {name: str(p.get("Default", "")) for name, p in TEMPLATE["Parameters"].items()}
    params.update(overrides)
    params.update({"AWS::StackName": STACK, "AWS::Region": REGION, "AWS::AccountId": ACCOUNT})
    params.update({"AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com"})
    stack = Stack(params, {}, {}, {})
    for name, condition in TEMPLATE["Conditions"].items():
        stack.conditions[name] = bool(_resolve(condition, stack))
    for name, resource in TEMPLATE["Resources"].items():
        if stack.conditions.get(resource.get("Condition", ""), True):
            stack.resources[name] = _resolve(resource, stack)
    stack.outputs = {name: _resolve(output["Value"], stack) for name, output in TEMPLATE["Outputs"].items()}
    return stack


_NO_VALUE = object()


def _ref(name: str, stack: Stack) -> Any:
    if name == "AWS::NoValue":
        return _NO_VALUE
    if name in stack.parameters:
        return stack.parameters[name]
    resource = TEMPLATE["Resources"][name]
    assert stack.conditions.get(resource.get("Condition", ""), True), f"Ref to {name}, which is not created"
    return f"ref:{name}"  # a physical id: names and ARNs are what CloudFormation makes them


def _get_att(name: str, attribute: str, stack: Stack) -> str:
    resource = TEMPLATE["Resources"][name]
    assert stack.conditions.get(resource.get("Condition", ""), True), (
        f"GetAtt of {name}, which is not created"
    )
    return f"arn:aws:test:{REGION}:{ACCOUNT}:{name}.{attribute}"


def _sub(text: str, variables: dict[str, Any], stack: Stack) -> str:
    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.startswith("!"):
            return "${" + name[1:] + "}"
        if name in variables:
            return str(variables[name])
        if "." in name and not name.startswith("AWS::"):
            resource, attribute = name.split(".", 1)
            return _get_att(resource, attribute, stack)
        return str(_ref(name, stack))

    return re.sub(r"\$\{([^}]+)\}", one, text)


def _resolve(node: Any, stack: Stack) -> Any:
    if isinstance(node, list):
        items = [_resolve(item, stack) for item in node]
        return [item for item in items if item is not _NO_VALUE]
    if not isinstance(node, dict):
        return node
    if len(node) == 1:
        ((key, value),) = node.items()
        if key == "Ref":
            return _ref(value, stack)
        if key == "Condition" and isinstance(value, str):
            return stack.conditions[value]
        if key == "Fn::GetAtt":
            return _get_att(value[0], value[1], stack)
        if key == "Fn::Sub":
            text, variables = (value, {}) if isinstance(value, str) else value
            return _sub(text, {k: _resolve(v, stack) for k, v in variables.items()}, stack)
        if key == "Fn::If":
            name, when_true, when_false = value
            return _resolve(when_true if stack.conditions[name] else when_false, stack)
        if key == "Fn::Equals":
            left, right = (str(_resolve(v, stack)) for v in value)
            return left == right
        if key == "Fn::Not":
            return not _resolve(value[0], stack)
        if key in ("Fn::And", "Fn::Or"):
            results = [bool(_resolve(v, stack)) for v in value]
            return all(results) if key == "Fn::And" else any(results)
        if key == "Fn::Split":
            return str(_resolve(value[1], stack)).split(value[0])
        if key == "Fn::FindInMap":
            name, first, second = (_resolve(v, stack) for v in value)
            return TEMPLATE["Mappings"][name][first][second]
        assert not key.startswith("Fn::"), f"the test's resolver does not know {key}"
    resolved = {key: _resolve(value, stack) for key, value in node.items()}
    return {key: value for key, value in resolved.items() if value is not _NO_VALUE}


def dashboard(stack: Stack) -> dict[str, Any]:
    props = stack.resources["OperatorDashboard"]["Properties"]
    assert isinstance(props["DashboardBody"], str)
    body: dict[str, Any] = json.loads(props["DashboardBody"])
    return body


@dataclass(frozen=True)
class Line:
    """One metric line of a dashboard widget."""

    namespace: str
    name: str
    dimensions: tuple[tuple[str, str], ...]  # sorted
    options: tuple[tuple[str, Any], ...]

    @property
    def dimension_names(self) -> frozenset[str]:
        return frozenset(name for name, _ in self.dimensions)


def lines(widget: dict[str, Any]) -> Iterator[Line]:
    for entry in widget["properties"].get("metrics", []):
        options = entry[-1] if isinstance(entry[-1], dict) else {}
        fields = entry[:-1] if options else entry
        assert "." not in fields, "no shorthand: each line spells its namespace, name and dimensions"
        namespace, name, *pairs = fields
        assert len(pairs) % 2 == 0, entry
        dimensions = tuple(sorted(zip(pairs[::2], pairs[1::2], strict=True)))
        stat = options.get("stat", widget["properties"].get("stat"))
        yield Line(namespace, name, dimensions, tuple(sorted({**options, "stat": stat}.items())))


def metric_widgets(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [w for w in body["widgets"] if w["type"] == "metric"]


def all_lines(body: dict[str, Any]) -> list[Line]:
    return [line for widget in metric_widgets(body) for line in lines(widget)]


# ---- what the code emits --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Emit:
    where: str
    name: str
    dimensions: tuple[tuple[str, str | None], ...]  # value None: computed at run time


def scan_emits() -> list[Emit]:
    """Every `metrics.emit|seconds|milliseconds(metrics.NAME, ..., dim=value)` in shared/ and functions/."""
    found = []
    for path in sorted([*ROOT.glob("shared/**/*.py"), *ROOT.glob("functions/**/*.py")]):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.ImportFrom) and node.module == "shared.metrics":
                pytest.fail(
                    f"{where}: import the module (`from shared import metrics`), so this scan sees it"
                )
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "metrics"
                and node.func.attr in ("emit", "seconds", "milliseconds")
            ):
                continue
            first = node.args[0] if node.args else None
            assert isinstance(first, ast.Attribute), (
                f"{where}: name the metric by its shared.metrics constant"
            )
            assert isinstance(first.value, ast.Name), where
            assert first.value.id == "metrics", where
            dimensions = []
            for keyword in node.keywords:
                assert keyword.arg is not None, f"{where}: no **dimensions: this scan must see each one"
                if keyword.arg in ("value", "unit"):
                    continue
                value = keyword.value.value if isinstance(keyword.value, ast.Constant) else None
                dimensions.append((keyword.arg, value if isinstance(value, str) else None))
            found.append(Emit(where, getattr(metrics, first.attr), tuple(sorted(dimensions))))
    return found


EMITS = scan_emits()


def metric_constants() -> dict[str, str]:
    return {
        attr: value
        for attr, value in vars(metrics).items()
        if attr.isupper() and isinstance(value, str) and attr != "NAMESPACE"
    }


def expected_lines() -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    """(metric, sorted dimensions with `service`) for every line the dashboard must have."""
    expected: set[tuple[str, tuple[tuple[str, str], ...]]] = set()

    def add(name: str, dimensions: dict[str, set[str]]) -> None:
        combos: list[dict[str, str]] = [{"service": STACK}]
        for dim, values in sorted(dimensions.items()):
            combos = [{**combo, dim: value} for combo in combos for value in sorted(values)]
        possible = (c for c in combos if not any(bad <= set(c.items()) for bad in IMPOSSIBLE))
        expected.update((name, tuple(sorted(combo.items()))) for combo in possible)

    emitted = {e.name for e in EMITS}
    for name in metric_constants().values():
        if name in emitted:
            for emit in (e for e in EMITS if e.name == name):
                dims: dict[str, set[str]] = {}
                for dim, value in emit.dimensions:
                    if value is None:
                        assert (name, dim) in VALUES, (
                            f"{emit.where}: list the run-time values of {dim} in VALUES"
                        )
                        dims[dim] = set(VALUES[name, dim])
                    else:
                        dims[dim] = {value}
                add(name, dims)
        else:
            assert name in CONTRACT, f"{name} is neither emitted by the code nor in the contract"
            add(name, {dim: set(VALUES[name, dim]) for dim in CONTRACT[name]})
        if name in metrics.ROLLED_UP:  # each data point counts in the total (`service` only) too
            add(name, {})
    return expected


# ---- tests ----------------------------------------------------------------------------------------------


def test_the_scan_sees_the_emit_calls_and_the_emf_lines_carry_service_plus_the_given_dimensions(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The scan's model of a data point: the keyword dimensions plus `service`, named after the stack.
    names = {e.name for e in EMITS}
    assert {metrics.CALLS_STARTED, metrics.ACCEPT_FAILURES, metrics.WEBHOOK_TO_ACCEPT} <= names
    assert {d for e in EMITS if e.name == metrics.CALL_DURATION for d, _ in e.dimensions} == {"source", "api"}
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", STACK)
    capsys.readouterr()
    metrics.emit(metrics.DUPLICATES_SUPPRESSED, kind="webhook")
    metrics.milliseconds(metrics.WEBHOOK_TO_ACCEPT, 12.34)
    first, second = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert first["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service", "kind"]]
    assert first["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "HelloRealtime" == metrics.NAMESPACE
    assert (first["service"], first["kind"]) == (STACK, "webhook")
    assert second["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service"]]


def test_every_metric_is_on_the_dashboard_with_exactly_the_dimensions_it_is_emitted_with() -> None:
    body = dashboard(render())
    on_dashboard = {(line.name, line.dimensions) for line in all_lines(body)}
    expected = expected_lines()
    missing = expected - on_dashboard
    assert not missing, f"metrics the code emits but the dashboard does not show: {sorted(missing)}"
    # And no line that nothing emits (a typo in a name or dimension draws an empty graph).
    stray = on_dashboard - expected
    assert not stray, f"dashboard lines no code emits: {sorted(stray)}"
    assert {line.namespace for line in all_lines(body)} == {metrics.NAMESPACE}
    assert all(w["properties"]["region"] == REGION for w in metric_widgets(body))


def test_the_issue_s_widgets_use_the_right_statistics() -> None:
    body = dashboard(render())
    by_metric: dict[str, set[str]] = {}
    for line in all_lines(body):
        by_metric.setdefault(line.name, set()).add(dict(line.options)["stat"])
    assert by_metric[metrics.WEBHOOK_TO_ACCEPT] == {"p50", "p90", "Maximum"}
    assert by_metric[metrics.DAILY_MINUTES_USED] == {"Maximum"}  # a running counter: never summed
    assert by_metric[metrics.CALL_DURATION] == {"Average", "Maximum"}
    counts = [metrics.CALLS_STARTED, metrics.ACCEPT_FAILURES, metrics.SIGNATURE_REJECTED]
    counts += [
        metrics.DUPLICATES_SUPPRESSED,
        metrics.OBSERVER_HANDOFFS,
        metrics.TOOL_ERRORS,
        metrics.CALLS_LIMITED,
    ]
    for name in counts:
        assert by_metric[name] == {"Sum"}, name
    titles = " | ".join(w["properties"]["title"] for w in metric_widgets(body)).lower()
    for words in ("by source", "latency", "accept failures", "signature", "duplicates", "hand-offs"):
        assert words in titles
    for words in ("tool errors", "minutes used", "refused", "duration"):
        assert words in titles


def _minutes_widget(body: dict[str, Any]) -> dict[str, Any]:
    (widget,) = [w for w in metric_widgets(body) if any(x.name == "DailyMinutesUsed" for x in lines(w))]
    return widget


def test_the_daily_limit_line_and_alarm_exist_only_with_a_limit() -> None:
    without = render()
    assert without.parameters["MaxCallMinutesPerDay"] == "0"
    assert "annotations" not in _minutes_widget(dashboard(without))["properties"]
    assert "DailyMinutesAlarm" not in without.resources

    limited = render(MaxCallMinutesPerDay="600")
    (line,) = _minutes_widget(dashboard(limited))["properties"]["annotations"]["horizontal"]
    assert line["value"] == 600
    alarm = limited.resources["DailyMinutesAlarm"]["Properties"]
    (used,) = [m for m in alarm["Metrics"] if "MetricStat" in m]
    (percent,) = [m for m in alarm["Metrics"] if m.get("ReturnData", True)]
    metric = used["MetricStat"]["Metric"]
    assert (metric["Namespace"], metric["MetricName"]) == (metrics.NAMESPACE, metrics.DAILY_MINUTES_USED)
    assert {(d["Name"], d["Value"]) for d in metric["Dimensions"]} == _alarm_dimensions(
        metrics.DAILY_MINUTES_USED
    )
    assert used["MetricStat"]["Stat"] == "Maximum"
    assert used["ReturnData"] is False
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"

    # The metric math, evaluated: 80 % of 600 minutes is 480.
    def breaches(minutes: float) -> bool:
        return _arithmetic(percent["Expression"], {used["Id"]: minutes}) >= float(alarm["Threshold"])

    assert breaches(480)
    assert breaches(600)
    assert not breaches(479)
    assert not breaches(0)


def _arithmetic(expression: str, names: dict[str, float]) -> float:
    """Evaluate a metric-math expression made of numbers, ids, + - * / and parentheses."""

    def value(node: ast.AST) -> float:
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return float(node.value)
        if isinstance(node, ast.Name):
            return names[node.id]
        if isinstance(node, ast.BinOp):
            left, right = value(node.left), value(node.right)
            operations = {ast.Add: left + right, ast.Sub: left - right, ast.Mult: left * right}
            if isinstance(node.op, ast.Div):
                return left / right
            return operations[type(node.op)]
        raise AssertionError(f"not plain arithmetic: {ast.dump(node)}")

    return value(ast.parse(expression, mode="eval").body)


def _alarm_dimensions(name: str) -> set[tuple[str, str]]:
    """The one dimension set an alarm on `name` watches (a rolled-up metric's: its total)."""
    rolled_up = name in metrics.ROLLED_UP
    (dims,) = {
        dims for metric, dims in expected_lines() if metric == name and not (rolled_up and len(dims) > 1)
    }
    return set(dims)


def test_accept_failure_and_signature_alarms_watch_the_emitted_metrics() -> None:
    stack = render()
    accept = stack.resources["AcceptFailuresAlarm"]["Properties"]
    assert (accept["Namespace"], accept["MetricName"]) == (metrics.NAMESPACE, metrics.ACCEPT_FAILURES)
    assert {(d["Name"], d["Value"]) for d in accept["Dimensions"]} == _alarm_dimensions(
        metrics.ACCEPT_FAILURES
    )
    assert (accept["Statistic"], accept["Period"], accept["EvaluationPeriods"]) == ("Sum", 300, 1)
    assert (accept["ComparisonOperator"], accept["Threshold"]) == ("GreaterThanOrEqualToThreshold", 1)

    signature = stack.resources["SignatureRejectionsAlarm"]["Properties"]
    assert (signature["Namespace"], signature["MetricName"]) == (
        metrics.NAMESPACE,
        metrics.SIGNATURE_REJECTED,
    )
    assert {(d["Name"], d["Value"]) for d in signature["Dimensions"]} == _alarm_dimensions(
        metrics.SIGNATURE_REJECTED
    )
    assert (signature["Statistic"], signature["Period"]) == ("Sum", 300)
    assert signature["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert signature["Threshold"] == "20"  # the parameter's default
    assert (
        render(SignatureRejectionAlarmThreshold="5").resources["SignatureRejectionsAlarm"]["Properties"][
            "Threshold"
        ]
        == "5"
    )
    # The dashboard draws the same threshold on the signature widget.
    (widget,) = [w for w in metric_widgets(dashboard(stack)) if "signature" in w["properties"]["title"]]
    assert widget["properties"]["annotations"]["horizontal"][0]["value"] == 20


def test_every_alarm_notifies_the_topic_and_treats_missing_data_as_fine() -> None:
    stack = render(MaxCallMinutesPerDay="100")
    alarms = {n: r["Properties"] for n, r in stack.resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    assert set(alarms) == {"AcceptFailuresAlarm", "SignatureRejectionsAlarm", "DailyMinutesAlarm"}
    for name, alarm in alarms.items():
        assert alarm["TreatMissingData"] == "notBreaching", name
        assert alarm["AlarmActions"] == ["ref:AlarmTopic"], name
        assert alarm["AlarmName"].startswith(f"{STACK}-"), name
    assert stack.resources["AlarmTopic"]["Type"] == "AWS::SNS::Topic"
    # The dashboard's alarm widget lists exactly the alarms the stack has.
    (widget,) = [w for w in dashboard(stack)["widgets"] if w["type"] == "alarm"]
    assert sorted(widget["properties"]["alarms"]) == sorted(
        f"arn:aws:test:{REGION}:{ACCOUNT}:{n}.Arn" for n in alarms
    )
    (widget,) = [w for w in dashboard(render())["widgets"] if w["type"] == "alarm"]
    assert len(widget["properties"]["alarms"]) == 2


def test_no_email_subscription_without_the_parameter() -> None:
    def subscriptions(stack: Stack) -> list[dict[str, Any]]:
        return [r["Properties"] for r in stack.resources.values() if r["Type"] == "AWS::SNS::Subscription"]

    assert render().parameters["AlarmEmail"] == ""
    assert subscriptions(render()) == []
    # Nor inline on the topic.
    assert "Subscription" not in render().resources["AlarmTopic"]["Properties"]
    (subscription,) = subscriptions(render(AlarmEmail="ops@example.com"))
    assert subscription == {"TopicArn": "ref:AlarmTopic", "Protocol": "email", "Endpoint": "ops@example.com"}


@pytest.mark.parametrize(
    ("value", "allowed"),
    [
        ("", True),
        ("ops@example.com", True),
        ("first.last+alarms@sub.example.co.uk", True),
        ("ops", False),
        ("ops@localhost", False),
        ("two words@example.com", False),
        ("ops@example.com,evil@example.com ", False),
    ],
)
def test_alarm_email_is_pattern_validated(value: str, allowed: bool) -> None:
    # CloudFormation matches AllowedPattern against the whole value.
    pattern = TEMPLATE["Parameters"]["AlarmEmail"]["AllowedPattern"]
    assert (re.fullmatch(pattern, value) is not None) is allowed


def test_the_dashboard_url_output_opens_the_stack_s_dashboard() -> None:
    stack = render()
    name = stack.resources["OperatorDashboard"]["Properties"]["DashboardName"]
    assert name == f"{STACK}-calls"
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,255}", name)  # what CloudWatch accepts in a dashboard name
    assert stack.outputs["DashboardUrl"] == (
        f"https://{REGION}.console.aws.amazon.com/cloudwatch/home?region={REGION}"
        "#dashboards/dashboard/ref:OperatorDashboard"
    )
    assert stack.outputs["AlarmTopicArn"] == "ref:AlarmTopic"


def test_the_limit_parameter_matches_the_shared_definition() -> None:
    # The limits change adds the same parameter; both must stay identical for the merge to keep one.
    parameter = TEMPLATE["Parameters"]["MaxCallMinutesPerDay"]
    assert parameter == {
        "Type": "Number",
        "Default": 0,
        "MinValue": 0,
        "Description": "Most call minutes the whole stack may use per UTC day (MAX_CALL_MINUTES_PER_DAY); "
        "further calls are refused. 0 = no limit.",
    }
