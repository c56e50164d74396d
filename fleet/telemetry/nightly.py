"""Registers the telemetry aggregation with the overnight runner (fleet.nightly).

``fleet.nightly`` discovers only ``<app>.nightly`` modules, so this one is imported from there:
``import fleet.telemetry.nightly  # noqa: F401,E402`` at the end of fleet/nightly.py.
"""

from fleet.nightly import Stage, nightly_job
from fleet.telemetry.duty import duty_cycles_for_depot_night

nightly_job(stage=Stage.TELEMETRY, name="fleet.telemetry_duty_cycles")(duty_cycles_for_depot_night)
