from rest_framework.routers import SimpleRouter

from timetable import api

router = SimpleRouter()
router.register("timetable/depots", api.DepotAssignmentViewSet, basename="timetable-depot")
router.register("timetable/pins", api.PinViewSet, basename="timetable-pin")

urlpatterns = router.urls
