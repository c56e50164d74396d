from django.apps import AppConfig
from django.utils.translation import pgettext_lazy


class ChargingConfig(AppConfig):
    name = "charging"
    # A context of its own: the same English word is also a charger's status ("Cargando").
    verbose_name = pgettext_lazy("admin section", "Charging")

    def ready(self) -> None:
        # Connects the receivers of what lower apps announce (batteries: a pack's ageing verdict -> an alert).
        from django.db.models.signals import post_save

        import charging.alerts  # noqa: F401
        from fleet.models import Vehicle

        # A bus sent to the workshop must leave tonight's plan: fleet (a lower app) cannot call charging, so
        # charging listens to the vehicle row being saved (a cheap check; a re-plan only if it is planned).
        post_save.connect(_vehicle_saved, sender=Vehicle, dispatch_uid="charging.vehicle_left_service")

        # A bus whose telemetry enters its depot's geofence has arrived (fleet announces it, charging records
        # the vehicle_arrived event and its re-plan).
        from charging.arrivals import record_arrival_from_telemetry
        from fleet.telemetry.arrivals import vehicle_entered_depot

        vehicle_entered_depot.connect(record_arrival_from_telemetry, dispatch_uid="charging.telemetry_arrival")


def _vehicle_saved(sender, instance, raw: bool = False, **kwargs) -> None:
    if raw:  # fixtures being loaded
        return
    from charging.events import vehicle_left_service

    vehicle_left_service(instance)
