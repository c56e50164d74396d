"""A connector's standard means something: a vehicle is planned only on connectors of a standard its model
accepts (a CCS2 bus does not fit a pantograph, a pantograph bus does not fit CCS2, a car does not fit CHAdeMO)."""

import pytest
from django.core.exceptions import ValidationError

from charging.models import Alert, Charger
from charging.planning import build_night, connector_key, plan_depot_night
from config.services import model_create
from fleet.models import VehicleModel
from tests import factories as f
from tests.charging.test_planning import NIGHT, _bus_with_blocks, depot  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db


def _connector(at_depot, standard, kind=Charger.Kind.DC):
    return f.ConnectorFactory(charger=f.ChargerFactory(depot=at_depot, kind=kind), connector_id=1, standard=standard)


def test_a_bus_is_planned_only_on_connectors_of_its_standards(depot):  # noqa: F811
    pantograph = _connector(depot, "pantograph")
    ccs2_bus = _bus_with_blocks(depot)  # the factory's model accepts CCS2 (the fixture's two connectors)
    roof_model = f.VehicleModelFactory(name="MODEL T 12m roof", connector_standards=["pantograph"])
    roof_bus = _bus_with_blocks(depot)
    roof_bus.model = roof_model
    roof_bus.save()

    night = build_night(depot, NIGHT)

    fits = {v.id: set(v.compatible_connector_ids) for v in night.instance.vehicles}
    assert connector_key(pantograph) not in fits[str(ccs2_bus.pk)] and len(fits[str(ccs2_bus.pk)]) == 2
    assert fits[str(roof_bus.pk)] == {connector_key(pantograph)}


def test_a_vehicle_with_no_connector_of_its_standard_is_short_with_an_alert(depot):  # noqa: F811
    chademo_model = f.VehicleModelFactory(name="Import bus", connector_standards=["chademo"])
    bus = _bus_with_blocks(depot)
    bus.model = chademo_model
    bus.save()

    plan = plan_depot_night(depot=depot, service_night=NIGHT)

    charge = plan.charges.get(vehicle=bus)
    assert charge.shortfall_kwh > 0 and charge.energy_kwh == 0
    assert Alert.objects.filter(kind=Alert.Kind.NO_COMPATIBLE_CONNECTOR, vehicle=bus).exists()


def test_a_new_model_takes_the_common_inlets_for_its_power_and_never_assumes_a_pantograph():
    fields = {"kind": "bus", "nominal_pack_kwh": 350, "consumption_kwh_per_km": 1.2, "max_ac_kw": 0}
    bus = model_create(VehicleModel, manufacturer="Taruk", name="DC only", max_dc_kw=150, **fields)
    both = model_create(
        VehicleModel, manufacturer="Taruk", name="AC and DC", max_dc_kw=150, **{**fields, "max_ac_kw": 22}
    )

    assert bus.connector_standards == ["ccs2"]
    assert both.connector_standards == ["ccs2", "type2", "j1772", "outlet"]
    with pytest.raises(ValidationError) as refused:
        model_create(
            VehicleModel, manufacturer="Taruk", name="Odd", max_dc_kw=150, connector_standards=["scart"], **fields
        )
    assert "connector_standards" in refused.value.message_dict
