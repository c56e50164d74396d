from django.urls import path
from rest_framework.routers import SimpleRouter

from timetable import api

router = SimpleRouter()
router.register("timetable/pins", api.PinViewSet, basename="timetable-pin")

urlpatterns = [
    path("timetable/assignments/run/", api.AssignmentRunView.as_view(), name="timetable-assignment-run"),
    *router.urls,
]
