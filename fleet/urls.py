from rest_framework.routers import SimpleRouter

from fleet.api import views

router = SimpleRouter()
router.register("organizations", views.OrganizationViewSet, basename="organization")
router.register("depots", views.DepotViewSet, basename="depot")
router.register("depot-memberships", views.DepotMembershipViewSet, basename="depot-membership")
router.register("vehicle-models", views.VehicleModelViewSet, basename="vehicle-model")
router.register("vehicles", views.VehicleViewSet, basename="vehicle")
router.register("blocks", views.BlockViewSet, basename="block")
router.register("block-assignments", views.BlockAssignmentViewSet, basename="block-assignment")

urlpatterns = router.urls
