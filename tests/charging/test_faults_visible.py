"""Faults and maintenance in sight: an alert for a connector or charger out of order, the charger list's real
status and its "Faulted" filter, the dashboard's count, and a bus sent to the workshop leaving the plan."""

import pytest

from charging.events import depot_event_record
from charging.models import Alert, ChargingPlan
from charging.planning import current_service_night, plan_depot_night
from charging.selectors import faulted_charger_counts, faulted_chargers, planned_charges_in_service
from charging.tasks import replan_depot_task
from tests import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def depot():
    return f.DepotFactory(grid_limit_kw=400.0)


def _open_alerts(**filters):
    return Alert.objects.exclude(status=Alert.Status.RESOLVED).filter(kind=Alert.Kind.CHARGER_FAULT, **filters)


def test_a_connector_fault_reported_by_staff_raises_an_alert_and_the_restore_resolves_it(depot):
    connector = f.ConnectorFactory(charger=f.ChargerFactory(depot=depot, name="DC 7"), connector_id=2)

    depot_event_record(depot=depot, kind="connector_faulted", client_event_id="e1", connector=connector)

    alert = _open_alerts(depot=depot).get()
    assert (alert.severity, alert.organization_id) == ("critical", depot.organization_id)
    assert "DC 7 #2" in alert.text and "faulted" in alert.text

    depot_event_record(depot=depot, kind="connector_restored", client_event_id="e2", connector=connector)

    assert not _open_alerts(depot=depot).exists()
    assert Alert.objects.get(pk=alert.pk).status == Alert.Status.RESOLVED


def test_a_charger_reported_offline_through_the_api_raises_an_alert(depot, api_client):
    charger = f.ChargerFactory(depot=depot)
    staff = f.UserFactory()
    f.MembershipFactory(user=staff, depot=depot, role="staff")
    api_client.force_authenticate(staff)

    response = api_client.post(f"/api/v1/chargers/{charger.pk}/status/", {"status": "offline"}, format="json")

    assert response.status_code == 200, response.json()
    assert _open_alerts(depot=depot).get().severity == "warning"
    api_client.post(f"/api/v1/chargers/{charger.pk}/status/", {"status": "available"}, format="json")
    assert not _open_alerts(depot=depot).exists()


def test_the_charger_list_shows_a_faulted_connector_and_the_faulted_filter_finds_it(depot, client):
    broken = f.ChargerFactory(depot=depot, name="Broken one")
    f.ConnectorFactory(charger=broken, connector_id=1)
    faulted = f.ConnectorFactory(charger=broken, connector_id=2)
    healthy = f.ChargerFactory(depot=depot, name="Healthy one")
    f.ConnectorFactory(charger=healthy, connector_id=1)
    depot_event_record(depot=depot, kind="connector_faulted", client_event_id="e1", connector=faulted)
    client.force_login(f.UserFactory(is_staff=True, is_superuser=True))

    everything = client.get("/admin/charging/charger/").content.decode()
    only_faulted = client.get("/admin/charging/charger/?status=faulted").content.decode()

    assert "Faulted (1/2: #2)" in everything
    assert "Broken one" in only_faulted and "Healthy one" not in only_faulted
    assert "Healthy one" in client.get("/admin/charging/charger/?status=available").content.decode()


def test_the_dashboard_selector_counts_faulted_chargers_per_depot(depot):
    other = f.DepotFactory(organization=depot.organization)
    f.ChargerFactory(depot=depot, status="faulted")
    f.ConnectorFactory(charger=f.ChargerFactory(depot=depot), status="offline")
    f.ConnectorFactory(charger=f.ChargerFactory(depot=depot), status="available")
    f.ChargerFactory(depot=other, status="maintenance")

    assert faulted_charger_counts([depot, other]) == {depot.pk: 2, other.pk: 1}
    assert faulted_chargers([depot.pk]).count() == 2


def test_a_bus_sent_to_the_workshop_leaves_the_plan_and_the_ready_count(
    depot, api_client, django_capture_on_commit_callbacks
):
    f.ConnectorFactory(charger=f.ChargerFactory(depot=depot, max_kw=150), connector_id=1, max_kw=150)
    f.ConnectorFactory(charger=f.ChargerFactory(depot=depot, max_kw=150), connector_id=1, max_kw=150)
    staying = f.VehicleFactory(organization=depot.organization, home_depot=depot)
    leaving = f.VehicleFactory(organization=depot.organization, home_depot=depot)
    night = current_service_night(depot)
    plan = plan_depot_night(depot=depot, service_night=night)
    assert set(plan.charges.values_list("vehicle_id", flat=True)) == {staying.pk, leaving.pk}
    staff = f.UserFactory()
    f.MembershipFactory(user=staff, depot=depot, role="staff")
    api_client.force_authenticate(staff)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = api_client.patch(f"/api/v1/vehicles/{leaving.pk}/", {"status": "maintenance"}, format="json")

    assert response.status_code == 200, response.json()
    assert len(callbacks) == 1  # a re-plan was asked for
    # Until it runs, the plan's in-service charges (what the ready count reads) leave the bus out.
    assert list(planned_charges_in_service(plan).values_list("vehicle_id", flat=True)) == [staying.pk]

    replan_depot_task.run(depot.pk, night.isoformat(), "vehicle maintenance")  # the worker's side, in-process

    active = ChargingPlan.objects.get(depot=depot, service_night=night, status="active")
    assert active.pk != plan.pk
    assert list(active.charges.values_list("vehicle_id", flat=True)) == [staying.pk]


def test_a_bus_not_in_tonights_plan_asks_for_no_replan(depot, django_capture_on_commit_callbacks):
    bus = f.VehicleFactory(organization=depot.organization, home_depot=depot)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        bus.status = "maintenance"
        bus.save()

    assert callbacks == []
