"""The GTFS-Realtime VehiclePositions feed of an organisation: protobuf, and the same as JSON for debugging.

``?organization=<slug>``. A token of a member sees the vehicles of their depots; without a token the feed
answers only if the organisation made it public (``FeedSettings.gtfs_rt_public``), then with all its vehicles.
"""

from __future__ import annotations

from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from google.protobuf import json_format
from rest_framework import exceptions, generics, permissions, renderers, serializers
from rest_framework.response import Response

from citydata import gtfs_rt
from citydata.selectors import feed_settings, feed_vehicles, public_feed_organization
from citydata.throttling import CityFeedThrottle
from fleet.api.scoped import DepotScopedViewSetMixin
from fleet.models import Organization, Vehicle
from fleet.scoping import Action, restrict

PROTOBUF = "application/x-protobuf"


class ProtobufRenderer(renderers.BaseRenderer):
    media_type = PROTOBUF
    format = "pb"
    charset = None

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data if isinstance(data, bytes) else renderers.JSONRenderer().render(data)


class FeedQuerySerializer(serializers.Serializer):
    organization = serializers.SlugField(max_length=60, help_text="The organisation's slug.")


class GtfsRealtimeFeed(DepotScopedViewSetMixin, generics.GenericAPIView):
    """Scoped like every read: a member's token sees their depots' vehicles (``restrict``); the public feed
    (if the organisation chose it) all of the organisation's vehicles in service."""

    queryset = Vehicle.objects.all()
    permission_classes = [permissions.AllowAny]  # decided per organisation in ``feed`` (401 unless public)
    throttle_classes = [CityFeedThrottle]
    pagination_class = None
    filter_backends: list = []

    def feed(self, request):
        query = FeedQuerySerializer(data=request.query_params.dict())
        user = request.user
        if not query.is_valid():
            if not user.is_authenticated:
                raise exceptions.NotAuthenticated()
            raise exceptions.ValidationError(query.errors)
        slug = query.validated_data["organization"]
        organization = None
        public = False
        if user.is_authenticated:
            organization = restrict(Organization.objects.all(), user, Action.VIEW).filter(slug=slug).first()
        if organization is None:
            organization = public_feed_organization(slug)
            public = organization is not None
        if organization is None:
            if not user.is_authenticated:
                raise exceptions.NotAuthenticated()
            raise exceptions.NotFound("No organisation with this slug among yours.")
        delay = feed_settings(organization).position_delay_seconds
        at = gtfs_rt.feed_as_of(timezone.now(), delay)
        vehicles = gtfs_rt.vehicles_in_service(feed_vehicles(user, organization, public=public), at=at)
        return gtfs_rt.feed_message(vehicles, at=at)


FEED_DESCRIPTION = (
    "GTFS-Realtime VehiclePositions (FULL_DATASET) of the vehicles in service: on a block assignment now, "
    "status in service, seen in the last 10 minutes. `trip.trip_id` is the block's code. Needs a token of "
    "a member of the organisation (their depots' vehicles) unless the organisation made its feed public. "
    "Positions are published `position_delay_seconds` late if the organisation set a delay. See docs/city-data.md."
)
PARAMS = [OpenApiParameter("organization", str, required=True, description="The organisation's slug.")]


class GtfsRealtimeVehiclePositionsView(GtfsRealtimeFeed):
    renderer_classes = [renderers.JSONRenderer, ProtobufRenderer]

    @extend_schema(
        operation_id="city_gtfs_rt_vehicle_positions",
        summary="GTFS-Realtime VehiclePositions (protobuf)",
        description=FEED_DESCRIPTION,
        parameters=PARAMS,
        responses={(200, PROTOBUF): OpenApiResponse(OpenApiTypes.BINARY, description="A FeedMessage.")},
        tags=["city data"],
    )
    def get(self, request):
        message = self.feed(request)
        return HttpResponse(message.SerializeToString(), content_type=PROTOBUF)


class GtfsRealtimeVehiclePositionsJsonView(GtfsRealtimeFeed):
    renderer_classes = [renderers.JSONRenderer]

    @extend_schema(
        operation_id="city_gtfs_rt_vehicle_positions_debug",
        summary="GTFS-Realtime VehiclePositions as JSON (debug view of the same feed)",
        description=FEED_DESCRIPTION + " Field names as in the protobuf's JSON mapping.",
        parameters=PARAMS,
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="The FeedMessage in JSON form.")},
        tags=["city data"],
    )
    def get(self, request):
        message = self.feed(request)
        return Response(json_format.MessageToDict(message, preserving_proto_field_name=True))
