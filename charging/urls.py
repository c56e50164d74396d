from rest_framework.routers import SimpleRouter

from charging import api, plans_api

router = SimpleRouter()
router.register("tariffs", api.TariffViewSet, basename="tariff")
router.register("chargers", api.ChargerViewSet, basename="charger")
router.register("connectors", api.ConnectorViewSet, basename="connector")
router.register("charging-plans", plans_api.ChargingPlanViewSet, basename="charging-plan")
router.register("vehicle-plans", plans_api.VehiclePlanViewSet, basename="vehicle-plan")
router.register("depot-events", plans_api.DepotEventViewSet, basename="depot-event")
router.register("alerts", plans_api.AlertViewSet, basename="alert")

urlpatterns = router.urls

# Charging sessions and the reports on them (charging/sessions_api.py).
from charging import sessions_api  # noqa: E402

router.register("charging-sessions", sessions_api.ChargingSessionViewSet, basename="charging-session")
router.register("reports", sessions_api.ReportViewSet, basename="report")
urlpatterns = router.urls
