"""City feed routes under /api/v1/ (config/urls.py: ``path("", include("citydata.urls"))``)."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from citydata import api
from fleet.telemetry import export

# The telemetry history export belongs to the telemetry URLconf; mounted here until that one moves (issue 12).
router = SimpleRouter()
router.register("telemetry/readings", export.TelemetryReadingExportViewSet, basename="telemetry-reading")

urlpatterns = [
    path("city/gtfs-rt/vehicle-positions.pb", api.GtfsRealtimeVehiclePositionsView.as_view(), name="gtfs-rt-pb"),
    path(
        "city/gtfs-rt/vehicle-positions.json", api.GtfsRealtimeVehiclePositionsJsonView.as_view(), name="gtfs-rt-json"
    ),
    *router.urls,
]
