"""The one strict base of every config model, and the one EventBridge Scheduler expression validator.

Pure (pydantic only): reading and validating a stack's config never imports Pulumi.

Schedules follow what EventBridge Scheduler documents for recurring schedules
(https://docs.aws.amazon.com/scheduler/latest/UserGuide/schedule-types.html):

- ``rate(value unit)``: a positive whole number and ``minute``/``minutes``, ``hour``/``hours`` or ``day``/``days``
  (singular for 1, plural otherwise);
- ``cron(minutes hours day-of-month month day-of-week year)``: six fields; minutes 0-59, hours 0-23,
  day-of-month 1-31 (``? L W`` too), month 1-12 or JAN-DEC, day-of-week 1-7 or SUN-SAT (``? L #`` too), year
  1970-2199; ``, - * /`` in every field; exactly one of day-of-month and day-of-week is ``?``.

One-time ``at()`` schedules are refused: a config schedule is a cadence.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict

__all__ = ["CRON_FIELDS", "ScheduleExpression", "StrictModel", "check_schedule", "rate_seconds"]


class StrictModel(BaseModel):
    """Base of every config model: unknown keys are errors, values are immutable once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)


_RATE = re.compile(r"^rate\((?P<n>[1-9]\d*) (?P<unit>minute|minutes|hour|hours|day|days)\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
_MONTHS = tuple("JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split())
_DAYS = tuple("SUN MON TUE WED THU FRI SAT".split())

# (name, lowest, highest, names, extra characters allowed in that field)
CRON_FIELDS: tuple[tuple[str, int, int, tuple[str, ...], str], ...] = (
    ("minutes", 0, 59, (), ""),
    ("hours", 0, 23, (), ""),
    ("day-of-month", 1, 31, (), "?LW"),
    ("month", 1, 12, _MONTHS, ""),
    ("day-of-week", 1, 7, _DAYS, "?L#"),
    ("year", 1970, 2199, (), ""),
)
EXAMPLE = "e.g. cron(0 3 ? * SUN *) or rate(1 day)"


def rate_seconds(expression: str) -> int | None:
    """Seconds between runs of a ``rate(...)`` schedule; ``None`` for a cron expression."""
    m = _RATE.match(expression)
    return int(m["n"]) * _UNIT_SECONDS[m["unit"].rstrip("s")] if m else None


def _check_cron_field(value: str, name: str, low: int, high: int, names: tuple[str, ...], extra: str) -> None:
    if value in ("*", "?") and (value == "*" or "?" in extra):
        return
    allowed = re.compile(rf"^[0-9A-Z,\-*/{re.escape(extra)}]+$")
    if not allowed.match(value) or ("?" in value and value != "?"):
        accepted = f"{low}-{high}" + (f" or {names[0]}-{names[-1]}" if names else "") + ", ',' '-' '*' '/'" + (
            "".join(f" '{c}'" for c in extra) if extra else "")
        raise ValueError(f"cron() {name} field {value!r} is not accepted; it takes {accepted}")
    for token in re.findall(r"[0-9]+|[A-Z]+", value):
        if token.isdigit():
            n = int(token)
            # After '/' a number is an increment, after '#' the week of the month: both only need to be positive.
            if not (low <= n <= high) and not re.search(rf"[/#]{token}(?![0-9])", value):
                raise ValueError(f"cron() {name} field {value!r}: {n} is outside {low}-{high}")
        elif token not in names and token not in ("L", "W"):
            raise ValueError(f"cron() {name} field {value!r}: {token!r} is not a {name} name" + (
                f" ({', '.join(names)})" if names else ""))


def check_schedule(expression: str) -> str:
    """Validate an EventBridge Scheduler ``rate()``/``cron()`` expression; the error says what is accepted.

    The one validator of every schedule in the config (retraining, drift, quality)."""
    m = _RATE.match(expression)
    if m is not None:
        if (m["n"] == "1") == m["unit"].endswith("s"):
            unit = m["unit"].rstrip("s")
            raise ValueError(f"use the singular unit for 1 and the plural otherwise, e.g. rate(1 {unit}) or rate({m['n']} {unit}s)")
        return expression
    if expression.startswith("cron(") and expression.endswith(")"):
        fields = expression[5:-1].split()
        if len(fields) != len(CRON_FIELDS):
            raise ValueError(
                f"cron() takes 6 fields (minutes hours day-of-month month day-of-week year), got {len(fields)}; {EXAMPLE}"
            )
        day_of_month, day_of_week = fields[2], fields[4]
        if (day_of_month == "?") == (day_of_week == "?"):
            raise ValueError(f"exactly one of day-of-month and day-of-week must be '?', {EXAMPLE}")
        for value, spec in zip(fields, CRON_FIELDS):
            _check_cron_field(value.upper(), *spec)
        return expression
    if expression.startswith("at("):
        raise ValueError(f"one-time at() schedules are not a cadence; use rate() or cron(), {EXAMPLE}")
    raise ValueError(f"expected rate(N minutes|hours|days) or cron(minutes hours day-of-month month day-of-week year), {EXAMPLE}")


ScheduleExpression = Annotated[str, AfterValidator(check_schedule)]
"""A config field holding an EventBridge Scheduler ``rate()``/``cron()`` expression (validated by ``check_schedule``)."""
