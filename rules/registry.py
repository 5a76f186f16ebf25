"""The table of rule kinds: each kind's model, compile step and needs, and the rule-file model built from them.

To add a kind: write `rules/kinds/<kind>.py` (model with `kind: Literal["<kind>"]`, `compile_rule`, `KIND`),
add its model to `Rule` and its `KIND` to `KINDS` below, and document it in docs/rules.md.
"""

from __future__ import annotations

import logging
from typing import Annotated

from pydantic import ConfigDict, Field

from rules.kinds import (
    absence,
    count_anomaly,
    crowd,
    line_crossing,
    loitering,
    persistence,
    sensor_rate,
    sensor_stale,
    sensor_sum,
    sensor_threshold,
    video_quality,
    zone_intrusion,
)
from rules.kinds.absence import AbsenceRule
from rules.kinds.base import AnyKind
from rules.kinds.count_anomaly import CountAnomalyRule
from rules.kinds.crowd import CrowdRule
from rules.kinds.line_crossing import LineCrossingRule
from rules.kinds.loitering import LoiteringRule
from rules.kinds.persistence import PersistenceRule
from rules.kinds.sensor_rate import SensorRateRule
from rules.kinds.sensor_stale import SensorStaleRule
from rules.kinds.sensor_sum import SensorSumRule
from rules.kinds.sensor_threshold import SensorThresholdRule
from rules.kinds.video_quality import VideoQualityRule
from rules.kinds.zone_intrusion import ZoneIntrusionRule
from rules.schema import _Strict

logger = logging.getLogger(__name__)

# the kinds, in the order the docs list them: camera kinds (they name `cameras`), then sensor kinds (`sensors`)
CameraRule = (
    ZoneIntrusionRule
    | CrowdRule
    | PersistenceRule
    | AbsenceRule
    | CountAnomalyRule
    | LineCrossingRule
    | LoiteringRule
    | VideoQualityRule
)
SensorRule = SensorThresholdRule | SensorRateRule | SensorSumRule | SensorStaleRule
Rule = Annotated[CameraRule | SensorRule, Field(discriminator="kind")]
KINDS: dict[str, AnyKind] = {
    spec.name: spec
    for spec in (
        zone_intrusion.KIND,
        crowd.KIND,
        persistence.KIND,
        absence.KIND,
        count_anomaly.KIND,
        line_crossing.KIND,
        loitering.KIND,
        video_quality.KIND,
        sensor_threshold.KIND,
        sensor_rate.KIND,
        sensor_sum.KIND,
        sensor_stale.KIND,
    )
}
RULE_KINDS: frozenset[str] = frozenset(KINDS)


def kind_of(rule: Rule) -> AnyKind:
    return KINDS[str(rule.kind)]


class RuleFile(_Strict):
    """The top level of a rule file."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        title="gridwatch rule file",
        json_schema_extra={"description": "Fence and anomaly rules for gridwatch cameras and sensors."},
    )

    rules: tuple[Rule, ...] = ()
