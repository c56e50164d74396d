"""python manage.py charger_password <charge point id>: a new password, shown once, stored hashed."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from charging.selectors import charger_queryset
from csms.services import charger_password_issue


class Command(BaseCommand):
    help = "Issue a new OCPP Basic-auth password for a charger (the old one stops working). Shown only once."

    def add_arguments(self, parser) -> None:
        parser.add_argument("charge_point_id")

    def handle(self, *args, charge_point_id: str, **options) -> None:
        charger = charger_queryset().filter(ocpp_charge_point_id=charge_point_id).first()
        if charger is None:
            raise CommandError(f"No charger has the OCPP charge point id {charge_point_id!r}.")
        _charge_point, password = charger_password_issue(charger=charger)
        self.stdout.write(f"Password for {charge_point_id} (shown once; only its hash is kept):")
        self.stdout.write(password)
