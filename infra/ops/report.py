"""``mlops report``: one self-contained HTML page about a model — metric history across its registered versions,
per-feature drift over time and live quality over time — from the registry and the reports in S3.

The page has no script and loads nothing (inline SVG and CSS): it opens from a file, an e-mail attachment or an
artifact store as it is. The charts are a few lines of SVG rather than a plotting library: the CLI stays free of
a graphics stack, and the page needs no JavaScript to render. Every name that comes from data (features,
metrics) is escaped.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from infra.ops.monitoring import VersionRow
from training.drift import REPORTS_PREFIX as DRIFT_REPORTS
from training.quality import REPORTS_PREFIX as QUALITY_REPORTS

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f")
"""One color per series, in order; the markers are drawn in exactly this color (tests find them in a screenshot)."""
WIDTH, HEIGHT, PAD = 720, 260, 48


@dataclass(frozen=True)
class Series:
    name: str
    points: list[tuple[str, float]]
    """(x label, value) in x order."""


def line_chart(title: str, series: list[Series], threshold: tuple[str, float] | None = None, order: list[str] | None = None) -> str:
    """An SVG line chart with square markers; ``threshold`` is a labelled horizontal line; ``order`` the x labels
    in order (default: as the series first name them)."""
    seen = list(dict.fromkeys(x for s in series for x, _ in s.points))
    labels = [x for x in order if x in seen] if order is not None else seen
    if not labels:
        return f'<figure><figcaption>{html.escape(title)}</figcaption><p class="empty">no data yet</p></figure>'
    values = [v for s in series for _, v in s.points] + ([threshold[1]] if threshold else [])
    lo, hi = min(values), max(values)
    if hi == lo:
        lo, hi = lo - 0.5, hi + 0.5
    span = hi - lo
    lo, hi = lo - 0.05 * span, hi + 0.05 * span

    def x(i: int) -> float:
        return PAD + (WIDTH - 2 * PAD) * (i / (len(labels) - 1) if len(labels) > 1 else 0.5)

    def y(v: float) -> float:
        return HEIGHT - PAD - (HEIGHT - 2 * PAD) * (v - lo) / (hi - lo)

    index = {label: i for i, label in enumerate(labels)}
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{html.escape(title)}">',
        f'<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>',
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" stroke="#999"/>',
        f'<line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{HEIGHT - PAD}" stroke="#999"/>',
        f'<text x="{PAD - 6}" y="{y(hi) + 4:.1f}" text-anchor="end" class="tick">{hi:.3g}</text>',
        f'<text x="{PAD - 6}" y="{y(lo) + 4:.1f}" text-anchor="end" class="tick">{lo:.3g}</text>',
    ]
    step = max(1, len(labels) // 8)
    for i, label in enumerate(labels):
        if i % step == 0 or i == len(labels) - 1:
            parts.append(f'<text x="{x(i):.1f}" y="{HEIGHT - PAD + 16}" text-anchor="middle" class="tick">{html.escape(label)}</text>')
    if threshold:
        ty = y(threshold[1])
        parts.append(f'<line x1="{PAD}" y1="{ty:.1f}" x2="{WIDTH - PAD}" y2="{ty:.1f}" stroke="#555" stroke-dasharray="6 4"/>')
        parts.append(f'<text x="{WIDTH - PAD}" y="{ty - 4:.1f}" text-anchor="end" class="tick">{html.escape(threshold[0])} {threshold[1]:g}</text>')
    legend = []
    for n, s in enumerate(series):
        color = COLORS[n % len(COLORS)]
        coords = [(x(index[label]), y(v)) for label, v in s.points]
        if len(coords) > 1:
            parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{" ".join(f"{a:.1f},{b:.1f}" for a, b in coords)}"/>')
        parts += [f'<rect x="{a - 4:.0f}" y="{b - 4:.0f}" width="8" height="8" fill="{color}"/>' for a, b in coords]
        legend.append(f'<span class="key" style="color:{color}">&#9632;</span> {html.escape(s.name)}')
    parts.append("</svg>")
    return f'<figure><figcaption>{html.escape(title)}</figcaption>{"".join(parts)}<div class="legend">{" &nbsp; ".join(legend)}</div></figure>'


def _reports(s3, bucket: str, prefix: str, since: datetime) -> list[tuple[str, dict[str, Any]]]:
    """(``YYYY-MM-DD HH:00`` label, report) of the reports under ``prefix`` from ``since`` on, oldest first."""
    out = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, StartAfter=f"{prefix}{since:%Y/%m/%d/%H}"):
        for obj in page.get("Contents", []):
            stamp = obj["Key"].removeprefix(prefix).removesuffix(".json")
            try:
                when = datetime.strptime(stamp, "%Y/%m/%d/%H")
            except ValueError:
                continue  # not a report of the job's layout
            try:
                doc = json.loads(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
            except ValueError:
                continue
            out.append((f"{when:%m-%d %H}h", doc))
    return out


def gather(s3, capture_bucket: str, model: str, days: int, now: datetime | None = None) -> tuple[list, list]:
    since = (now or datetime.now(timezone.utc)) - timedelta(days=days)
    return (
        _reports(s3, capture_bucket, f"{model}/{DRIFT_REPORTS}/", since),
        _reports(s3, capture_bucket, f"{model}/{QUALITY_REPORTS}/", since),
    )


def render(
    *, stack: str, model: str, versions: list[VersionRow], drift: list[tuple[str, dict]], quality: list[tuple[str, dict]],
    drift_threshold: float | None, standard: tuple[str, float] | None, generated: datetime,
) -> str:
    """The page (pure: everything it shows is an argument)."""
    live = next((v.version for v in versions if v.live), None)
    sections = []
    metric_names = sorted({m for v in versions for m in v.metrics})
    history = [Series(m, [(f"v{v.version}", v.metrics[m]) for v in versions if m in v.metrics]) for m in metric_names]
    sections.append(
        "<h2>Metric history across versions</h2>"
        + line_chart("Evaluation metrics of each registered version", history, order=[f"v{v.version}" for v in versions])
    )
    rows = "".join(
        f"<tr{' class=live' if v.live else ''}><td>{v.version}{' (live)' if v.live else ''}</td><td>{html.escape(v.approval)}</td>"
        f"<td>{html.escape(v.created[:19])}</td>{''.join(f'<td>{v.metrics[m]:.4f}</td>' if m in v.metrics else '<td>-</td>' for m in metric_names)}"
        f"<td>{html.escape(v.data.get('train:version_id') or '-')}</td><td>{html.escape((v.code_sha256 or '-')[:12])}</td>"
        f"<td>{html.escape(v.training_job or '-')}</td></tr>"
        for v in versions
    )
    head = "".join(f"<th>{html.escape(m)}</th>" for m in metric_names)
    sections.append(
        f"<table><tr><th>version</th><th>approval</th><th>created</th>{head}<th>data version</th><th>code</th><th>training job</th></tr>{rows}</table>"
        if versions else '<p class="empty">no registered version yet</p>'
    )
    features = sorted({f for _, r in drift for f in (r.get("features") or {})})
    drift_order = [label for label, _ in drift]
    per_feature = [
        Series(f, [(label, r["features"][f]["psi"]) for label, r in drift if isinstance((r.get("features") or {}).get(f, {}).get("psi"), (int, float))])
        for f in features
    ]
    sections.append(
        "<h2>Input drift over time</h2>"
        + line_chart("PSI per feature", per_feature, ("threshold", drift_threshold) if drift_threshold is not None else None, drift_order)
    )
    quality_names = sorted({m for _, r in quality for m, v in (r.get("metrics") or {}).items() if v is not None})
    quality_series = [Series(m, [(label, r["metrics"][m]) for label, r in quality if r.get("metrics", {}).get(m) is not None]) for m in quality_names]
    sections.append(
        "<h2>Live quality over time (from ground truth)</h2>"
        + line_chart("Quality metrics of each run", quality_series, ("production standard", standard[1]) if standard else None)
        + line_chart("Joined predictions per run", [Series("joined", [(label, float(r.get("records", {}).get("joined", 0))) for label, r in quality])])
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(model)} in {html.escape(stack)}</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; background: #fff; }}
figure {{ margin: 12px 0 24px; }} figcaption {{ font-weight: 600; margin-bottom: 4px; }}
table {{ border-collapse: collapse; margin: 8px 0 24px; }} td, th {{ border: 1px solid #ccc; padding: 3px 8px; text-align: left; }}
tr.live td {{ font-weight: 600; background: #eef6ee; }} .tick {{ font-size: 11px; fill: #555; }} .empty {{ color: #777; }}
.legend {{ font-size: 12px; }}
</style></head><body>
<h1>Model {html.escape(model)} &mdash; stack {html.escape(stack)}</h1>
<p>Live version: <strong>{live if live is not None else "none"}</strong>; {len(versions)} registered version(s); {len(drift)} drift and {len(quality)} quality report(s).
Generated {generated:%Y-%m-%d %H:%M} UTC.</p>
{"".join(sections)}
</body></html>
"""
