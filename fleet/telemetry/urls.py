"""Telemetry routes, mounted under /api/v1/ by config/urls.py: ``path("", include("fleet.telemetry.urls"))``."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from fleet.telemetry import api as telemetry_api
from fleet.telemetry import export

router = SimpleRouter()
router.register("telemetry/live", telemetry_api.VehicleLiveStateViewSet, basename="telemetry-live")
router.register("telemetry/duty-cycles", telemetry_api.DailyDutyCycleViewSet, basename="telemetry-duty-cycle")
# The history export (docs/city-data.md): by vehicle or depot and time range, paged JSON, streamed CSV / JSON Lines.
router.register("telemetry/readings", export.TelemetryReadingExportViewSet, basename="telemetry-reading")

urlpatterns = [
    path("telemetry/batch/", telemetry_api.TelemetryBatchView.as_view(), name="telemetry-batch"),
    *router.urls,
]
