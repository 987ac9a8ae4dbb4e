"""One CloudWatch dashboard per stack: per model, traffic, errors, latency, drift and CT-run outcomes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.serving.endpoint import ENDPOINT_NAMESPACE, VARIANT
from training.drift import METRIC_MAX, METRIC_PREDICTION
from training.quality import METRIC_JOINED, METRIC_LABELS, QUALITY_METRIC_PREFIX


@dataclass(frozen=True)
class DashboardModel:
    model: str
    endpoint_name: str | None
    metric_namespace: str
    state_machine_arn: pulumi.Input[str] | None = None
    quality: tuple[str, float] | None = None
    """(metric, production standard) when the model's live quality is monitored."""


def dashboard_body(region: str, models: list[dict[str, Any]]) -> dict[str, Any]:
    """The dashboard JSON (pure). Each model is a row: invocations, errors, p99 latency, drift, CT runs.

    ``models`` items: ``model``, ``endpoint_name`` (or None), ``metric_namespace``, ``state_machine_arn`` (or None).
    """
    widgets: list[dict[str, Any]] = []
    y = 0
    for m in models:
        widgets.append({"type": "text", "x": 0, "y": y, "width": 24, "height": 1, "properties": {"markdown": f"## {m['model']}"}})
        y += 1

        def graph(x: int, title: str, metrics: list, stat: str = "Sum", **extra: Any) -> dict[str, Any]:
            return {
                "type": "metric",
                "x": x,
                "y": y,
                "width": 6,
                "height": 6,
                "properties": {"title": title, "region": region, "view": "timeSeries", "stat": stat, "period": 300, "metrics": metrics, **extra},
            }

        ep = m["endpoint_name"]
        dims = ["EndpointName", ep, "VariantName", VARIANT]
        if ep:
            widgets.append(graph(0, "Invocations", [[ENDPOINT_NAMESPACE, "Invocations", *dims]]))
            widgets.append(
                graph(6, "Errors", [[ENDPOINT_NAMESPACE, "Invocation5XXErrors", *dims], [ENDPOINT_NAMESPACE, "Invocation4XXErrors", *dims]])
            )
            widgets.append(graph(12, "Model latency p99 (µs)", [[ENDPOINT_NAMESPACE, "ModelLatency", *dims]], stat="p99"))
        widgets.append(
            graph(
                18, "Drift (inputs: max feature PSI; answers: PSI)",
                [[m["metric_namespace"], METRIC_MAX, "Model", m["model"]], [m["metric_namespace"], METRIC_PREDICTION, "Model", m["model"]]],
                stat="Maximum",
            )
        )
        y += 6
        second_row = False
        if m.get("state_machine_arn"):
            arn = m["state_machine_arn"]
            widgets.append(
                graph(
                    0,
                    "Continuous-training runs",
                    [
                        ["AWS/States", "ExecutionsSucceeded", "StateMachineArn", arn],
                        ["AWS/States", "ExecutionsFailed", "StateMachineArn", arn],
                        ["AWS/States", "ExecutionsTimedOut", "StateMachineArn", arn],
                    ],
                    period=3600,
                )
            )
            second_row = True
        if m.get("quality"):
            metric, standard = m["quality"]
            ns = m["metric_namespace"]
            widgets.append(
                graph(
                    6, f"Live quality ({metric}, from ground truth)", [[ns, QUALITY_METRIC_PREFIX + metric, "Model", m["model"]]], stat="Average",
                    period=3600, annotations={"horizontal": [{"label": "production standard", "value": standard}]},
                )
            )
            widgets.append(
                graph(12, "Ground truth (labels, joined)", [[ns, METRIC_LABELS, "Model", m["model"]], [ns, METRIC_JOINED, "Model", m["model"]]], period=3600)
            )
            second_row = True
        if second_row:
            y += 6
    return {"start": "-P7D", "widgets": widgets}


class StackDashboard(pulumi.ComponentResource):
    dashboard_name: pulumi.Output[str]

    def __init__(self, name: str, dashboard_name: str, region: str, models: list[DashboardModel], opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:monitoring:StackDashboard", name, None, opts)
        arns = [m.state_machine_arn for m in models]
        body = pulumi.Output.all(*arns).apply(
            lambda resolved: json.dumps(
                dashboard_body(
                    region,
                    [
                        {"model": m.model, "endpoint_name": m.endpoint_name, "metric_namespace": m.metric_namespace, "state_machine_arn": arn, "quality": m.quality}
                        for m, arn in zip(models, resolved)
                    ],
                )
            )
        )
        dashboard = aws.cloudwatch.Dashboard(
            f"{name}-dashboard", dashboard_name=dashboard_name, dashboard_body=body, opts=pulumi.ResourceOptions(parent=self)
        )
        self.dashboard_name = dashboard.dashboard_name
        self.register_outputs({"dashboard_name": self.dashboard_name})
