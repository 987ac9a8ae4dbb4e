"""``mlops drift``: the drift job's report for local capture files, against a baseline.

Exit codes: 0 no drift (or too few records to judge: the report says ``insufficient_data``); 1 drift
detected (at least one feature's PSI above the threshold); 2 the input is the user's to fix (missing
file, not a baseline, no capture files).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from infra.cli.common import out
from infra.errors import UserError

if TYPE_CHECKING:
    from rich.table import Table


def render(report: dict[str, Any]) -> Table:
    """The per-feature table printed under the summary line."""
    from rich.table import Table

    table = Table("feature", "kind", "PSI", "JS", "missing", "drifted", title=f"PSI threshold {report['threshold']:g}; JS: Jensen-Shannon distance; missing: baseline → now")
    for name, r in report["features"].items():
        missing = r["missing_share"]
        table.add_row(
            name,
            r["kind"],
            "-" if r["psi"] is None else f"{r['psi']:.4f}",
            "-" if r["js_distance"] is None else f"{r['js_distance']:.4f}",
            f"{missing['baseline']:.1%} → {missing['current']:.1%}",
            "[bold red]yes[/]" if r["drifted"] else "no",
        )
    return table


def drift(
    baseline: Annotated[Path, typer.Option("--baseline", "-b", help="baseline.json written by training, or a model.tar.gz holding one.")],
    current: Annotated[Path, typer.Option("--current", "-c", help="A capture file (JSON Lines) or a directory of *.jsonl capture files.")],
    threshold: Annotated[float, typer.Option("--threshold", min=0.0, help="PSI above which a feature counts as drifted.")] = 0.2,
    min_records: Annotated[int, typer.Option("--min-records", min=1, help="Fewest scored records to judge drift at all.")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON report (as the scheduled job writes it) instead of a table.")] = False,
) -> None:
    """Score capture files against a training baseline: PSI and Jensen-Shannon per feature.

    Exit code 0: no drift; 1: drift detected; 2: bad input.
    """
    from training.drift import EXIT_DRIFT, EXIT_NO_DRIFT, DriftError, score_paths

    try:
        report = score_paths(baseline, current, threshold, min_records)
    except DriftError as e:  # the container runtime's own error (training cannot import infra)
        raise UserError(str(e)) from None
    if as_json:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    else:
        records = report["records"]
        reasons = ", ".join(f"{k} {v}" for k, v in records["malformed_by_reason"].items())
        status = {"drift": "[bold red]drift[/]", "no_drift": "[green]no drift[/]", "insufficient_data": "[yellow]insufficient data[/]"}[report["status"]]
        out.print(
            f"{status}: {records['scored']} records scored from {report['files']} file(s), "
            f"{records['malformed']} malformed{f' ({reasons})' if reasons else ''}; "
            f"drifted: {', '.join(report['drifted_features']) or 'none'}",
            highlight=False,
        )
        out.print(render(report))
    raise typer.Exit(EXIT_DRIFT if report["status"] == "drift" else EXIT_NO_DRIFT)


COMMANDS = [(drift, "drift", None)]
