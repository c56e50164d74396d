from rest_framework.routers import SimpleRouter

from csms import api

router = SimpleRouter()
router.register("charge-points", api.ChargePointViewSet, basename="charge-point")
router.register("profile-deliveries", api.ProfileDeliveryViewSet, basename="profile-delivery")

urlpatterns = router.urls
