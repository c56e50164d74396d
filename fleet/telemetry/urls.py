"""Telemetry routes, mounted under /api/v1/ by config/urls.py: ``path("", include("fleet.telemetry.urls"))``."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from fleet.telemetry import api as telemetry_api

router = SimpleRouter()
router.register("telemetry/live", telemetry_api.VehicleLiveStateViewSet, basename="telemetry-live")
router.register("telemetry/duty-cycles", telemetry_api.DailyDutyCycleViewSet, basename="telemetry-duty-cycle")

urlpatterns = [
    path("telemetry/batch/", telemetry_api.TelemetryBatchView.as_view(), name="telemetry-batch"),
    *router.urls,
]
