from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CsmsConfig(AppConfig):
    """The OCPP central system: the chargers' side of the depot (docs/ocpp.md)."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "csms"
    verbose_name = _("Charger link (OCPP)")
