from django.apps import AppConfig


class CsmsConfig(AppConfig):
    """The OCPP central system: the chargers' side of the depot (docs/ocpp.md)."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "csms"
    verbose_name = "Charger link (OCPP)"
