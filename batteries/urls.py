from rest_framework.routers import SimpleRouter

from batteries import api, health_api

router = SimpleRouter()
router.register("battery-packs", api.BatteryPackViewSet, basename="battery-pack")
router.register("pack-installations", api.PackInstallationViewSet, basename="pack-installation")
router.register("health-observations", api.HealthObservationViewSet, basename="health-observation")
router.register("battery-health", health_api.BatteryHealthViewSet, basename="battery-health")

urlpatterns = router.urls
