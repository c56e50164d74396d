"""Registers the telemetry aggregation as a nightly job (``fleet.nightly_registry``).

The registry discovers only ``<app>.nightly`` modules (fleet's is the runner, ``fleet/nightly.py``), so this
one is imported by ``FleetConfig.ready``.
"""

from fleet.nightly_registry import Stage, nightly_job
from fleet.telemetry.duty import duty_cycles_for_depot_night

nightly_job(stage=Stage.TELEMETRY, name="fleet.telemetry_duty_cycles")(duty_cycles_for_depot_night)
