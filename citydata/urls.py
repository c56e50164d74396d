"""City feed routes under /api/v1/ (config/urls.py: ``path("", include("citydata.urls"))``)."""

from django.urls import path

from citydata import api

urlpatterns = [
    path("city/gtfs-rt/vehicle-positions.pb", api.GtfsRealtimeVehiclePositionsView.as_view(), name="gtfs-rt-pb"),
    path(
        "city/gtfs-rt/vehicle-positions.json", api.GtfsRealtimeVehiclePositionsJsonView.as_view(), name="gtfs-rt-json"
    ),
]
