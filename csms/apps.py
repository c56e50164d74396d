from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CsmsConfig(AppConfig):
    """The OCPP central system: the chargers' side of the depot (docs/ocpp.md)."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "csms"
    verbose_name = _("Charger link (OCPP)")

    def ready(self) -> None:
        # The plan page and the plan API (charging, a floor below) show whether each charger got the plan; only
        # this app's outbox knows: hand charging the reader (charging never imports csms).
        from charging.plan_delivery import plan_delivery_source
        from csms.selectors import plan_delivery

        plan_delivery_source(plan_delivery)
