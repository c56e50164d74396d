from rest_framework.routers import SimpleRouter

from charging import api

router = SimpleRouter()
router.register("tariffs", api.TariffViewSet, basename="tariff")
router.register("chargers", api.ChargerViewSet, basename="charger")
router.register("connectors", api.ConnectorViewSet, basename="connector")

urlpatterns = router.urls
