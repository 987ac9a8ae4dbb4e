"""components.validation: the one strict base and the one Scheduler-expression rule, the same for every schedule of
the config (retraining, drift, quality), on what EventBridge Scheduler documents for rate() and cron()."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from components.monitoring.drift_config import DriftConfig
from components.monitoring.quality_config import QualityConfig
from components.pipeline.config import PipelineConfig, TriggersConfig
from components.serving.config import EndpointConfig
from components.validation import StrictModel, check_schedule
from infra.config import StackConfig

SCHEDULED = (
    lambda e: TriggersConfig(schedule=e),
    lambda e: DriftConfig(schedule=e, alarm_period_seconds=3600),
    lambda e: QualityConfig(schedule=e, alarm_period_seconds=86400),
)


@pytest.mark.parametrize("expression", [
    "rate(1 minute)", "rate(5 minutes)", "rate(1 hour)", "rate(7 days)", "cron(0 3 ? * SUN *)", "cron(15 2 1 * ? *)",
    "cron(0/15 * ? * MON-FRI *)", "cron(0 8 L * ? *)", "cron(0 8 ? * 6#3 *)", "cron(0 12 ? JAN,JUL 2 2026-2030)",
])
def test_accepts_what_scheduler_documents_for_every_schedule(expression):
    for build in SCHEDULED:
        build(expression)


@pytest.mark.parametrize("expression, message", [
    ("cron(0 3 * * SUN *)", "exactly one of day-of-month and day-of-week must be '?'"),
    ("cron(0 3 ? * ? *)", "exactly one of day-of-month and day-of-week must be '?'"),
    ("cron(60 3 ? * SUN *)", "minutes field '60': 60 is outside 0-59"),
    ("cron(0 24 ? * SUN *)", "hours field '24': 24 is outside 0-23"),
    ("cron(0 3 ? 13 SUN *)", "month field '13': 13 is outside 1-12"),
    ("cron(0 3 ? * SUNDAY *)", "day-of-week field 'SUNDAY': 'SUNDAY' is not a day-of-week name"),
    ("cron(0 3 ? * SUN 1969)", "year field '1969': 1969 is outside 1970-2199"),
    ("cron(0 3 ? * SUN)", "cron() takes 6 fields"),
    ("cron(0 3 1? * ? *)", "day-of-month field '1?' is not accepted"),
    ("rate(1 hours)", "singular unit for 1"),
    ("rate(0 hours)", "expected rate(N minutes|hours|days)"),
    ("at(2026-01-01T00:00:00)", "one-time at() schedules are not a cadence"),
])
def test_rejects_the_same_bad_schedule_for_retraining_drift_and_quality(expression, message):
    with pytest.raises(ValueError, match=None) as direct:
        check_schedule(expression)
    assert message in str(direct.value)
    for build in SCHEDULED:
        with pytest.raises(ValidationError) as exc:
            build(expression)
        assert message in str(exc.value)


@pytest.mark.parametrize("model", [TriggersConfig, PipelineConfig, DriftConfig, QualityConfig, EndpointConfig, StackConfig])
def test_every_config_model_has_the_one_strict_base(model: type[BaseModel]):
    assert issubclass(model, StrictModel)


def test_rejects_unknown_keys_and_changes_after_loading():
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        DriftConfig(schedul="rate(1 hour)")  # type: ignore[call-arg]
    cfg = DriftConfig()
    with pytest.raises(ValidationError, match="frozen"):
        cfg.schedule = "rate(2 hours)"  # type: ignore[misc]
