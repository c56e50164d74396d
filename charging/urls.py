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
