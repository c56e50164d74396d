"""FilterSets for the fleet registry: one per model, shared by the API, the admin and exports.

Related objects are filtered by id with ``NumberFilter`` rather than ``ModelChoiceFilter``: the queryset is
already restricted to the user's depots, so an id outside it simply matches nothing, and validating the id
against every depot would both cost a query and tell a user that another depot's id exists.
"""

import django_filters as filters
from django.db.models import Q

from fleet.models import Block, BlockAssignment, Depot, DepotMembership, Vehicle, VehicleModel


class DepotFilter(filters.FilterSet):
    organization = filters.NumberFilter(field_name="organization_id")

    class Meta:
        model = Depot
        fields = ["organization", "code"]


class DepotMembershipFilter(filters.FilterSet):
    depot = filters.NumberFilter(field_name="depot_id")
    user = filters.NumberFilter(field_name="user_id")

    class Meta:
        model = DepotMembership
        fields = ["depot", "user", "role"]


class VehicleModelFilter(filters.FilterSet):
    class Meta:
        model = VehicleModel
        fields = ["kind", "chemistry", "manufacturer"]


class VehicleFilter(filters.FilterSet):
    depot = filters.NumberFilter(field_name="home_depot_id")
    has_depot = filters.BooleanFilter(field_name="home_depot", lookup_expr="isnull", exclude=True)
    organization = filters.NumberFilter(field_name="organization_id")
    model = filters.NumberFilter(field_name="model_id")
    kind = filters.ChoiceFilter(field_name="model__kind", choices=VehicleModel.Kind.choices)
    created_at = filters.DateFromToRangeFilter()

    class Meta:
        model = Vehicle
        fields = ["depot", "has_depot", "organization", "model", "kind", "status", "created_at"]


class BlockFilter(filters.FilterSet):
    depot = filters.NumberFilter(field_name="depot_id")
    service_date = filters.DateFromToRangeFilter()
    runs_on = filters.DateFilter(method="filter_runs_on", label="Runs on (date)")

    class Meta:
        model = Block
        fields = ["depot", "code", "service_date", "runs_on"]

    def filter_runs_on(self, queryset, name, value):
        # Dated blocks on that day, plus weekly blocks valid then; the weekday test is done in Python
        # (Block.runs_on) because JSON containment is not portable to SQLite.
        candidates = queryset.filter(
            Q(service_date=value)
            | Q(service_date__isnull=True, valid_from__lte=value)
            & (Q(valid_until__isnull=True) | Q(valid_until__gte=value))
        )
        running = [
            block.pk
            for block in candidates.select_related(None).only(
                "pk", "service_date", "weekdays", "valid_from", "valid_until"
            )
            if block.runs_on(value)
        ]
        return queryset.filter(pk__in=running)


class BlockAssignmentFilter(filters.FilterSet):
    vehicle = filters.NumberFilter(field_name="vehicle_id")
    block = filters.NumberFilter(field_name="block_id")
    depot = filters.NumberFilter(field_name="block__depot_id")
    service_date = filters.DateFromToRangeFilter()

    class Meta:
        model = BlockAssignment
        fields = ["vehicle", "block", "depot", "service_date"]
