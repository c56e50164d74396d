"""Fleet models: the registry (organisations, depots, vehicles, blocks) and, later, telemetry."""

from fleet.models.registry import (
    Block,
    BlockAssignment,
    Chemistry,
    Depot,
    DepotMembership,
    Organization,
    Vehicle,
    VehicleModel,
    default_depot_time_zone,
    validate_time_zone,
)

__all__ = [
    "Block",
    "BlockAssignment",
    "Chemistry",
    "Depot",
    "DepotMembership",
    "Organization",
    "Vehicle",
    "VehicleModel",
    "default_depot_time_zone",
    "validate_time_zone",
]
