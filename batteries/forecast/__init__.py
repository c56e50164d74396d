"""Battery health forecast: pure Python (numpy, scipy, PyBaMM), no Django.

Public API (see docs/forecast.md)::

    from batteries.forecast import (
        forecast_pack, forecast_fleet, calibrate_pack, calibrate_cluster, calibrate_pooled, PooledCalibration,
        model_prior,
        prior_calibration, ForecastRefused,
        PackSpec, DutyStats, BlockPlan, Climate, HealthObservation, AgeingCalibration, ForecastJob,
        ForecastResult, ForecastPoint, Crossing,
    )
"""

import os

# Before anything imports PyBaMM: no telemetry prompt or network call from a server process.
os.environ.setdefault("PYBAMM_DISABLE_TELEMETRY", "true")

from .calibrate import (  # noqa: E402
    calibrate_cluster,
    calibrate_pack,
    enough_observations,
    prior_calibration,
    screen_observations,
)
from .fleet import FleetRun, duty_signature, forecast_fleet  # noqa: E402
from .forecast import FLAG_NOT_FINITE, FLAG_OUTSIDE_MODEL_RANGE, forecast_pack, prepare  # noqa: E402
from .pooled import PooledCalibration, calibrate_pooled, fit_observed_pooled, model_prior, model_priors  # noqa: E402
from .presets import PRESETS, get_preset  # noqa: E402
from .trajectory import (  # noqa: E402
    FLAG_DAY_NOT_COMPLETED,
    FLAG_DUTY_EXCEEDS_CAPACITY,
    FLAG_SOLVER_FAILED,
    TrajectorySettings,
)
from .types import (  # noqa: E402
    AgeingCalibration,
    BlockPlan,
    Climate,
    Crossing,
    DutyStats,
    ForecastJob,
    ForecastPoint,
    ForecastRefused,
    ForecastResult,
    HealthObservation,
    PackSpec,
)

__all__ = [
    "FLAG_DAY_NOT_COMPLETED",
    "FLAG_DUTY_EXCEEDS_CAPACITY",
    "FLAG_NOT_FINITE",
    "FLAG_OUTSIDE_MODEL_RANGE",
    "FLAG_SOLVER_FAILED",
    "PRESETS",
    "AgeingCalibration",
    "BlockPlan",
    "Climate",
    "Crossing",
    "DutyStats",
    "FleetRun",
    "ForecastJob",
    "ForecastPoint",
    "ForecastRefused",
    "ForecastResult",
    "HealthObservation",
    "PackSpec",
    "PooledCalibration",
    "TrajectorySettings",
    "calibrate_cluster",
    "calibrate_pack",
    "calibrate_pooled",
    "duty_signature",
    "enough_observations",
    "fit_observed_pooled",
    "forecast_fleet",
    "forecast_pack",
    "get_preset",
    "model_prior",
    "model_priors",
    "prepare",
    "prior_calibration",
    "screen_observations",
]
