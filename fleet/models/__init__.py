"""Fleet models: the registry (organisations, depots, vehicles, blocks) and telemetry."""

from fleet.models.registry import (
    Block,
    BlockAssignment,
    Chemistry,
    ConnectorStandard,
    Depot,
    DepotMembership,
    Organization,
    Vehicle,
    VehicleModel,
    default_depot_time_zone,
    validate_time_zone,
)
from fleet.models.telemetry import (  # noqa: F401  (telemetry models, exported for the app registry)
    ChargingState,
    DailyDutyCycle,
    TelemetryMinute,
    TelemetryReading,
    VehicleApiKey,
    VehicleLiveState,
)

__all__ = [
    "Block",
    "BlockAssignment",
    "Chemistry",
    "ConnectorStandard",
    "Depot",
    "DepotMembership",
    "Organization",
    "Vehicle",
    "VehicleModel",
    "default_depot_time_zone",
    "validate_time_zone",
]
