"""``mlops models`` (a model's registered versions and their lineage), ``mlops status`` (every model at a glance) and
``mlops report`` (one HTML page about a model).

Exit codes: 0 shown; 2 the user's to fix (unknown stack or model, an undeployed stack, no credentials).
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from infra.cli.common import AsJson, ModelName, StackFile, StackName, load_stack, out, require_model
from infra.errors import UserError

if TYPE_CHECKING:
    from infra.ops.session import StackSession


def _session(stack: Optional[str], file: Optional[Path], model: Optional[str] = None) -> StackSession:
    from infra.ops.monitoring import stack_deployed
    from infra.ops.session import StackSession

    name, cfg = load_stack(stack, file)
    if model is not None:
        require_model(cfg, model, name)
    session = StackSession(cfg, name)
    if not stack_deployed(session):
        raise UserError(f"stack {name!r} is not deployed: its data bucket {session.bucket('data')} does not exist (pulumi up --stack {name})")
    return session


def _number(value) -> str:
    return "-" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)


def models(model: ModelName, stack: StackName = None, file: StackFile = None, as_json: AsJson = False) -> None:
    """The model's registered versions: approval, evaluation metrics, data version, code hash, training job; the live one marked."""
    from rich.table import Table

    from components.naming import endpoint_name, registry_group_name
    from infra.ops.monitoring import model_versions

    session = _session(stack, file, model)
    cfg = session.cfg
    rows = model_versions(session.client("sagemaker"), registry_group_name(cfg.name_prefix, session.stack, model), endpoint_name(cfg.name_prefix, session.stack, model))
    if as_json:
        sys.stdout.write(json.dumps([asdict(r) for r in rows], indent=2) + "\n")
        return
    if not rows:
        out.print(f"{model} has no registered version yet (the CT flow registers one when a trained model passes its gate)")
        return
    metric_names = sorted({m for r in rows for m in r.metrics})
    table = Table("version", "live", "approval", "created", *metric_names, "data version", "code", "training job", title=f"{model} in {session.stack}")
    for r in rows:
        data = r.data.get("train:version_id") or r.data.get("train:s3_uri") or "-"
        table.add_row(
            str(r.version), "[bold green]live[/]" if r.live else "", r.approval, r.created[:19],
            *(_number(r.metrics.get(m)) for m in metric_names), data, (r.code_sha256 or "-")[:12], r.training_job or "-",
        )
    out.print(table)


def status(stack: StackName = None, file: StackFile = None, as_json: AsJson = False) -> None:
    """Every model at a glance: live version and endpoint state, last CT runs, latest drift and quality, alarms in ALARM."""
    from rich.table import Table

    from infra.ops.monitoring import model_status

    session = _session(stack, file)
    states = [model_status(session, name) for name in session.cfg.models]
    if as_json:
        sys.stdout.write(json.dumps([s.to_json() for s in states], indent=2, default=str) + "\n")
        return
    table = Table("model", "endpoint", "live version", "last runs", "drift", "quality", "alarms", title=f"stack {session.stack}")
    for s in states:
        runs = ", ".join(r["status"].lower() for r in s.runs) or "none"
        drift = "-" if s.drift is None else f"{s.drift.get('status')} (max PSI {_number(s.drift.get('max_psi'))})"
        quality = "-"
        if s.quality is not None:
            scores = ", ".join(f"{k} {_number(v)}" for k, v in (s.quality.get("metrics") or {}).items() if k in ("roc_auc", "rmse", "accuracy"))
            quality = f"{s.quality.get('status')}{f' ({scores})' if scores else ''}, {s.quality.get('records', {}).get('joined', 0)} joined"
        alarms = "[bold red]" + ", ".join(s.alarms) + "[/]" if s.alarms else "[green]none[/]"
        table.add_row(s.model, s.endpoint_status or ("none" if s.endpoint is None else "not found"), _number(s.live_version), runs, drift, quality, alarms)
    out.print(table)


def report(
    model: ModelName,
    stack: StackName = None,
    file: StackFile = None,
    output: Annotated[Path, typer.Option("--out", "-o", help="Where to write the page.")] = Path("report.html"),
    days: Annotated[int, typer.Option("--days", min=1, max=400, help="Days of drift and quality reports to plot.")] = 30,
) -> None:
    """A self-contained HTML page: metric history across versions, per-feature drift and live quality over time."""
    from datetime import datetime, timezone

    from components.naming import endpoint_name, registry_group_name
    from infra.ops.monitoring import _call, model_versions
    from infra.ops.report import gather, render

    session = _session(stack, file, model)
    cfg, name = session.cfg, session.stack
    model_cfg = cfg.models[model]
    versions = model_versions(session.client("sagemaker"), registry_group_name(cfg.name_prefix, name, model), endpoint_name(cfg.name_prefix, name, model))
    capture = session.bucket("capture")
    drift, quality = _call(lambda: gather(session.client("s3"), capture, model, days), f"reading reports in s3://{capture}")
    page = render(
        stack=name, model=model, versions=versions, drift=drift, quality=quality,
        drift_threshold=model_cfg.drift.threshold if model_cfg.drift.enabled else None,
        standard=model_cfg.quality_standard[:2] if model_cfg.quality.enabled else None,
        generated=datetime.now(timezone.utc),
    )
    try:
        output.write_text(page, encoding="utf-8")
    except OSError as e:
        raise UserError(f"cannot write {output}: {e.strerror}") from None
    out.print(f"wrote {output}: {len(versions)} version(s), {len(drift)} drift and {len(quality)} quality report(s)", highlight=False, soft_wrap=True)


COMMANDS = [(report, "report", None), (models, "models", None), (status, "status", None)]
