from rest_framework.routers import SimpleRouter

from batteries import api

router = SimpleRouter()
router.register("battery-packs", api.BatteryPackViewSet, basename="battery-pack")
router.register("pack-installations", api.PackInstallationViewSet, basename="pack-installation")
router.register("health-observations", api.HealthObservationViewSet, basename="health-observation")

urlpatterns = router.urls
