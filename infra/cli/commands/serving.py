"""``mlops rollback``: move a model's endpoint back to an earlier approved version, through the guardrails."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer

from components.naming import endpoint_name, resource_name


def register(app: typer.Typer) -> None:
    from infra.cli.app import FileOpt, StackOpt, err, fail, load_stack, out, require_model

    @app.command()
    def rollback(
        stack: Optional[str] = StackOpt,
        file: Optional[Path] = FileOpt,
        model: str = typer.Option(..., "--model", "-m", help="Model name (a key of mlops:models)."),
        to: Optional[str] = typer.Option(None, "--to", help="Model package version (number or ARN); default: the previous approved one."),
        wait: bool = typer.Option(True, "--wait/--no-wait", help="Follow the deployment until it settles."),
    ) -> None:
        """Roll the model's endpoint back to an earlier approved model package version."""
        from infra.ops.session import StackSession
        from components.serving.endpoint import flow_deployment_configs
        from infra.ops.serving import OpsError, apply_rollback, plan_rollback, wait_in_service

        name, cfg = load_stack(stack, file)
        require_model(cfg, model, name)
        session = StackSession(cfg, name)
        sm = session.client("sagemaker")
        endpoint = endpoint_name(cfg.name_prefix, name, model)
        try:
            plan = plan_rollback(
                sm,
                endpoint_name=endpoint,
                group=resource_name(cfg.name_prefix, name, model),
                to=to,
                pinned=cfg.models[model].endpoint.model_package,
                run_id=time.strftime("%Y%m%d%H%M%S"),
            )
            current = plan.current.version if plan.current else "bootstrap"
            out.print(f"rolling {endpoint} back from version {current} to version {plan.target.version}")
            every, _ = flow_deployment_configs(endpoint, cfg.models[model].endpoint)
            apply_rollback(sm, plan, every)
            if not wait:
                out.print("update started; the endpoint's blue/green policy and rollback alarms apply")
                return
            with out.status("deploying") as status:
                live = wait_in_service(sm, endpoint, plan.endpoint_config_name, lambda s: status.update(f"endpoint {s}"))
        except OpsError as e:
            raise fail(str(e)) from None
        if not live:
            err.print(f"[red]the deployment of version {plan.target.version} was rolled back by its alarms; the previous model is still live[/]")
            raise typer.Exit(1)
        out.print(f"[green]version {plan.target.version} is live on {endpoint}[/]")
