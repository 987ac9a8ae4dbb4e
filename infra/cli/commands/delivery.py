"""``mlops diff`` (what a change does to a stack) and ``mlops check`` (the stack's security rules, offline)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from infra.cli.common import StackFile, StackName, out, stack_path
from infra.errors import UserError


def diff(
    old: Annotated[Path, typer.Argument(help="Manifest before the change (`mlops synth --out` on the base branch).")],
    new: Annotated[Path, typer.Argument(help="Manifest after the change (`mlops synth --out` on the PR head).")],
    markdown: Annotated[bool, typer.Option("--markdown", help="Print a markdown summary (for $GITHUB_STEP_SUMMARY).")] = False,
) -> None:
    """List what a change adds, changes, replaces and removes; exit 1 when it would lose data or weaken a guardrail."""
    from rich.table import Table

    from infra.review.diff import diff as compare
    from infra.review.diff import load_manifest, to_markdown

    before, after = load_manifest(old), load_manifest(new)
    if before.get("stack") and after.get("stack") and before["stack"] != after["stack"]:
        raise UserError(f"{old} is stack {before['stack']!r} but {new} is stack {after['stack']!r}; compare one stack at a time")
    report = compare(before, after)
    if markdown:
        sys.stdout.write(to_markdown(report))
    else:
        table = Table("", "change", "resource", "type", "details", title=f"stack {report.stack}: {report.summary()}")
        for c in report.changes:
            table.add_row(
                "[bold red]BLOCKING[/]" if c.blocking else "",
                c.kind,
                c.name,
                c.type,
                "\n".join((*(f"[red]{b}[/]" for b in c.blocking), *c.reasons)),
            )
        out.print(table if report.changes else f"stack {report.stack}: no resource changes")
    if report.blocking:
        raise typer.Exit(1)


def check(
    stack: StackName = None,
    file: StackFile = None,
    manifest: Annotated[Optional[Path], typer.Option("--manifest", "-m", help="Check this synth manifest instead of synthesizing.")] = None,
    list_rules: Annotated[bool, typer.Option("--list-rules", help="Print the rule set and exit.")] = False,
) -> None:
    """Run the stack's security rules (the same ones as the policy pack in policy/) on its synth manifest, offline."""
    from rich.table import Table

    from infra.review.rules import RULES, evaluate

    if list_rules:
        table = Table("rule", "severity", "applies to", "requirement", title=f"{len(RULES)} rules")
        for r in RULES:
            table.add_row(r.id, r.severity, "\n".join(t.split(":")[-1] for t in r.types), r.description)
        out.print(table)
        return
    name, resources = _resources(stack, file, manifest)
    violations = evaluate(resources)
    checked = sum(1 for r in resources if r.get("custom", True))
    if not violations:
        out.print(f"[green]ok[/] {name}: {checked} resources pass all {len(RULES)} rules")
        return
    table = Table("severity", "rule", "resource", "problem and fix", title=f"{name}: {len(violations)} violations")
    order = {"critical": 0, "high": 1, "medium": 2, "low": 3}
    for v in sorted(violations, key=lambda v: (order[v.rule.severity], v.rule.id, v.name)):
        table.add_row(v.rule.severity, v.rule.id, f"{v.name}\n[dim]{v.type}[/]", v.message)
    out.print(table)
    raise typer.Exit(1)


def _resources(stack: Optional[str], file: Optional[Path], manifest: Optional[Path]) -> tuple[str, list[dict]]:
    """The resources to check: from a manifest file, or from a synth of the stack file."""
    from infra.review.diff import load_manifest

    if manifest is not None:
        if stack is not None or file is not None:
            raise UserError("give --manifest alone, or --stack/--file to synthesize the stack first")
        doc = load_manifest(manifest)
        return str(doc.get("stack") or manifest), doc["resources"]
    from infra.review.synth import synth_file

    _, synthesized = synth_file(stack_path(stack, file))
    return synthesized.stack, synthesized.resources


COMMANDS = [(diff, "diff", None), (check, "check", None)]
