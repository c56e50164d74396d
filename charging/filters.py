"""FilterSets for tariffs and chargers (API, admin, exports). Ids are plain numbers: see fleet.filters."""

import django_filters as filters

from charging.models import Charger, Connector, Tariff


class TariffFilter(filters.FilterSet):
    organization = filters.NumberFilter(field_name="organization_id")

    class Meta:
        model = Tariff
        fields = ["organization", "currency"]


class ChargerFilter(filters.FilterSet):
    depot = filters.NumberFilter(field_name="depot_id")
    min_kw = filters.NumberFilter(field_name="max_kw", lookup_expr="gte", label="At least this many kW")

    class Meta:
        model = Charger
        fields = ["depot", "status", "kind", "min_kw"]


class ConnectorFilter(filters.FilterSet):
    charger = filters.NumberFilter(field_name="charger_id")
    depot = filters.NumberFilter(field_name="charger__depot_id")

    class Meta:
        model = Connector
        fields = ["charger", "depot", "status", "standard"]
