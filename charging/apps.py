from django.apps import AppConfig
from django.utils.translation import pgettext_lazy


class ChargingConfig(AppConfig):
    name = "charging"
    # A context of its own: the same English word is also a charger's status ("Cargando").
    verbose_name = pgettext_lazy("admin section", "Charging")

    def ready(self) -> None:
        # Connects the receivers of what lower apps announce (batteries: a pack's ageing verdict -> an alert).
        import charging.alerts  # noqa: F401
