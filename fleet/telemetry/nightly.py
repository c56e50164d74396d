"""Registers the telemetry aggregation as a nightly job (``fleet.nightly_registry``).

The registry discovers only ``<app>.nightly`` modules (fleet's is the runner, ``fleet/nightly.py``), so this
one is imported by ``FleetConfig.ready``.
"""

from fleet.nightly_registry import Stage, nightly_job
from fleet.telemetry.duty import duty_cycles_for_depot_night
from fleet.telemetry.partitions import telemetry_partitions_ensure

nightly_job(stage=Stage.TELEMETRY, name="fleet.telemetry_duty_cycles")(duty_cycles_for_depot_night)


@nightly_job(stage=Stage.TELEMETRY, name="fleet.telemetry_partitions")
def telemetry_partitions_for_night(*, depot, night) -> str:
    """Day partitions of the readings table two weeks ahead (PostgreSQL). The table is shared by all depots:
    the first depot's run creates what is missing, the others find nothing to do."""
    created = telemetry_partitions_ensure()
    return f"{len(created)} day partitions created" if created else "partitions in place"
