"""The world of the fault tests, written into the private database by ``manage.py shell`` (no tests here):
one depot with a DC charger, its staff member (a token), and buses with a vehicle key each; a second depot for the
task-outbox test (its re-plans are counted, so no other test's events may be folded into them). Prints it as JSON."""

from __future__ import annotations

import json
import sys


def main(vehicles: int) -> None:
    from rest_framework.authtoken.models import Token

    from fleet.telemetry.keys import vehicle_key_issue
    from tests import factories as f

    depot = f.DepotFactory(code="flt", name="Fault depot", grid_limit_kw=400.0)
    f.ConnectorFactory(charger=f.ChargerFactory(depot=depot, max_kw=150), connector_id=1, max_kw=150)
    staff = f.UserFactory(username="fault.staff")  # is_staff: signs in to the admin too
    f.MembershipFactory(user=staff, depot=depot, role="staff")
    buses = [f.VehicleFactory(organization=depot.organization, home_depot=depot) for _ in range(vehicles)]
    world = {
        "depot": depot.pk,
        "staff_token": Token.objects.create(user=staff).key,
        "vehicles": [{"id": bus.pk, "key": vehicle_key_issue(vehicle=bus)[1]} for bus in buses],
    }
    outbox_depot = f.DepotFactory(code="obx", name="Outbox depot", organization=depot.organization)
    outbox_staff = f.UserFactory(username="outbox.staff")
    f.MembershipFactory(user=outbox_staff, depot=outbox_depot, role="staff")
    world["outbox"] = {
        "depot": outbox_depot.pk,
        "staff_token": Token.objects.create(user=outbox_staff).key,
        "vehicles": [
            {"id": f.VehicleFactory(organization=depot.organization, home_depot=outbox_depot).pk} for _ in range(2)
        ],
    }
    sys.stdout.write(json.dumps(world) + "\n")
