"""FilterSets for the battery registry (API, admin, exports). Ids are plain numbers: see fleet.filters."""

import django_filters as filters
from django.db.models import Q

from batteries.models import BatteryPack, HealthObservation, PackInstallation
from fleet.models import Chemistry


class BatteryPackFilter(filters.FilterSet):
    organization = filters.NumberFilter(field_name="organization_id")
    chemistry = filters.ChoiceFilter(choices=Chemistry.choices)
    vehicle = filters.NumberFilter(method="filter_vehicle", label="In vehicle (id) now")
    depot = filters.NumberFilter(method="filter_depot", label="In a vehicle of depot (id) now")
    installed = filters.BooleanFilter(method="filter_installed", label="Installed in a vehicle now")
    manufactured_on = filters.DateFromToRangeFilter()

    class Meta:
        model = BatteryPack
        fields = ["organization", "chemistry", "vehicle", "depot", "installed", "manufactured_on"]

    # The current installation only: a pack's history elsewhere must not match. Subqueries, not joins,
    # so a pack with several installations is never listed twice.
    def filter_vehicle(self, queryset, name, value):
        return queryset.filter(pk__in=_active(Q(vehicle_id=value)))

    def filter_depot(self, queryset, name, value):
        return queryset.filter(pk__in=_active(Q(vehicle__home_depot_id=value)))

    def filter_installed(self, queryset, name, value):
        active = Q(pk__in=_active(Q()))
        return queryset.filter(active) if value else queryset.exclude(active)


def _active(q: Q):
    return PackInstallation.objects.filter(q, removed_at__isnull=True).values("pack_id")


class PackInstallationFilter(filters.FilterSet):
    pack = filters.NumberFilter(field_name="pack_id")
    vehicle = filters.NumberFilter(field_name="vehicle_id")
    depot = filters.NumberFilter(field_name="vehicle__home_depot_id")
    active = filters.BooleanFilter(field_name="removed_at", lookup_expr="isnull")
    installed_at = filters.DateFromToRangeFilter()

    class Meta:
        model = PackInstallation
        fields = ["pack", "vehicle", "depot", "active", "installed_at"]


class HealthObservationFilter(filters.FilterSet):
    pack = filters.NumberFilter(field_name="pack_id")
    source = filters.ChoiceFilter(choices=HealthObservation.Source.choices)
    observed_at = filters.DateFromToRangeFilter()
    soh_pct_below = filters.NumberFilter(field_name="soh_pct", lookup_expr="lt")

    class Meta:
        model = HealthObservation
        fields = ["pack", "source", "observed_at", "soh_pct_below"]
