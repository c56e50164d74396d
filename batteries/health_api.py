"""Battery health in the API: a pack's observations with its latest forecast, and the fleet ranked by life left."""

from __future__ import annotations

from django.db.models import OuterRef, Subquery
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view, inline_serializer
from rest_framework import mixins, serializers
from rest_framework.response import Response

from batteries.models import BatteryPack, HealthObservation, SoHForecast
from fleet.api.scoped import ScopedGenericViewSet


class SoHForecastSerializer(serializers.ModelSerializer):
    pack_serial = serializers.CharField(source="pack.serial", read_only=True)

    class Meta:
        model = SoHForecast
        fields = [
            "id",
            "pack",
            "pack_serial",
            "as_of",
            "method",
            "calibration_source",
            "rate_factor",
            "rate_log_sigma",
            "observations_used",
            "soh_now_pct",
            "fade_pct_per_year",
            "resistance_factor_now",
            "eol_80_on",
            "eol_80_p10_on",
            "eol_80_p90_on",
            "warranty_floor_on",
            "rul_days",
            "rul_km",
            "rul_efc",
            "rul_censored",
            "flags",
            "end_of_duty_on",
            "points",
        ]
        read_only_fields = fields


class ObservationBriefSerializer(serializers.ModelSerializer):
    class Meta:
        model = HealthObservation
        fields = ["observed_at", "source", "soh_pct", "uncertainty_pct", "capacity_kwh"]
        read_only_fields = fields


def below_warranty_trajectory(pack: BatteryPack, forecast: SoHForecast) -> bool:
    """Whether SoH today is under the straight line from 100 % new to the warranty floor at its term."""
    if not (pack.warranty_years and pack.warranty_min_soh_pct and pack.manufactured_on):
        return False
    years_in_service = (forecast.as_of - pack.manufactured_on).days / 365.25
    allowed = 100.0 - (100.0 - pack.warranty_min_soh_pct) * min(years_in_service / pack.warranty_years, 1.0)
    return forecast.soh_now_pct < allowed


def forecasts_in_order(ids: list[int]) -> list[SoHForecast]:
    """The forecasts of ``ids``, in that order, with their packs and without their points."""
    by_id = SoHForecast.objects.select_related("pack").defer("points").in_bulk(ids)
    return [by_id[pk] for pk in ids]


class PackHealthSummarySerializer(SoHForecastSerializer):
    below_warranty_trajectory = serializers.SerializerMethodField()

    class Meta(SoHForecastSerializer.Meta):
        fields = [f for f in SoHForecastSerializer.Meta.fields if f != "points"] + ["below_warranty_trajectory"]
        read_only_fields = fields

    def get_below_warranty_trajectory(self, forecast: SoHForecast) -> bool:
        return below_warranty_trajectory(forecast.pack, forecast)


@extend_schema_view(
    list=extend_schema(
        summary="Fleet battery health: each pack's latest forecast, shortest remaining life first",
        parameters=[
            OpenApiParameter("depot", int, description="Packs in this depot's vehicles"),
            OpenApiParameter("below_warranty", bool, description="Only packs under their warranty trajectory"),
        ],
    ),
    retrieve=extend_schema(
        summary="A pack's health: its observations and latest forecast with the P10/P50/P90 band",
        responses=inline_serializer(
            "PackHealth",
            {
                "pack": serializers.IntegerField(),
                "serial": serializers.CharField(),
                "observations": ObservationBriefSerializer(many=True),
                "forecast": SoHForecastSerializer(allow_null=True),
            },
        ),
    ),
)
class BatteryHealthViewSet(ScopedGenericViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin):
    """Read-only; ``{id}`` is the pack's id."""

    queryset = BatteryPack.objects.all()
    serializer_class = PackHealthSummarySerializer
    scope_distinct = True
    filter_backends: list = []  # filtered by hand below: the rows are forecasts, the scope is packs

    def list(self, request):
        packs = self.get_queryset()
        depot = request.query_params.get("depot")
        if depot is not None:
            if not depot.isdigit():
                raise serializers.ValidationError({"depot": ["Give the depot's id."]})
            packs = packs.filter(installations__removed_at__isnull=True, installations__vehicle__home_depot=depot)
        # The latest forecast looked up once per pack through the (pack, as_of) index, and the packs ranked by it:
        # joining the forecasts table instead read every stored forecast (weekly, of every pack: 0.9 s at city
        # scale). The list leaves the points out.
        latest = SoHForecast.objects.filter(pack=OuterRef("pk")).order_by("-as_of")  # one a day
        ranked = (
            BatteryPack.objects.filter(pk__in=packs.values("pk"))
            .annotate(
                latest_id=Subquery(latest.values("pk")[:1]), latest_rul_days=Subquery(latest.values("rul_days")[:1])
            )
            .filter(latest_id__isnull=False)
            .order_by("latest_rul_days", "serial", "latest_id")
        )
        if request.query_params.get("below_warranty") in ("true", "1"):
            forecasts = forecasts_in_order([pack.latest_id for pack in ranked.only("pk")])
            page = self.paginate_queryset([row for row in forecasts if below_warranty_trajectory(row.pack, row)])
        else:  # paginated by the database: a count and one page of packs, then that page's forecasts
            packs_page = self.paginate_queryset(ranked.only("pk")) or []
            page = forecasts_in_order([pack.latest_id for pack in packs_page])
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def retrieve(self, request, pk=None):
        pack = self.get_object()
        forecast = pack.forecasts.order_by("-as_of").first()
        return Response(
            {
                "pack": pack.pk,
                "serial": pack.serial,
                "observations": ObservationBriefSerializer(
                    pack.health_observations.order_by("observed_at"), many=True
                ).data,
                "forecast": SoHForecastSerializer(forecast).data if forecast else None,
            }
        )
