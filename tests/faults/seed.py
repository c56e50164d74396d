"""The world of the fault tests, written into the private database by ``manage.py shell`` (no tests here):
one depot, its staff member (a token), and buses with a vehicle key each. Prints it as JSON."""

from __future__ import annotations

import json
import sys


def main(vehicles: int) -> None:
    from rest_framework.authtoken.models import Token

    from fleet.telemetry.keys import vehicle_key_issue
    from tests import factories as f

    depot = f.DepotFactory(code="flt", name="Fault depot")
    staff = f.UserFactory(username="fault.staff")  # is_staff: signs in to the admin too
    f.MembershipFactory(user=staff, depot=depot, role="staff")
    buses = [f.VehicleFactory(organization=depot.organization, home_depot=depot) for _ in range(vehicles)]
    world = {
        "depot": depot.pk,
        "staff_token": Token.objects.create(user=staff).key,
        "vehicles": [{"id": bus.pk, "key": vehicle_key_issue(vehicle=bus)[1]} for bus in buses],
    }
    sys.stdout.write(json.dumps(world) + "\n")
