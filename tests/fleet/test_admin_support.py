"""Helpers and the world the admin tests share (imported by tests/*/test_admin*.py; holds no tests itself)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.forms import MultiWidget
from django.urls import reverse

from charging.planning import plan_depot_night
from fleet.telemetry.keys import vehicle_key_issue
from tests import factories as f


def admin_url(obj_or_model, view: str = "change") -> str:
    opts = obj_or_model._meta
    name = f"admin:{opts.app_label}_{opts.model_name}_{view}"
    if view in ("change", "delete", "history"):
        return reverse(name, args=[obj_or_model.pk])
    return reverse(name)


def form_data(response, **changes) -> dict:
    """The POST body the admin page in ``response`` would send unchanged, with ``changes`` applied.

    Includes the inlines' management forms, which the admin requires even for view-only inlines.
    """
    data: dict = {}

    def add(form) -> None:
        for bound in form:
            value = bound.value()
            if isinstance(bound.field.widget, MultiWidget):
                parts = value if isinstance(value, list) else bound.field.widget.decompress(value)
                for index, part in enumerate(parts):
                    data[f"{bound.html_name}_{index}"] = "" if part is None else part
            elif isinstance(value, bool):
                if value:
                    data[bound.html_name] = "on"
            else:
                data[bound.html_name] = "" if value is None else value

    add(response.context["adminform"].form)
    for inline in response.context["inline_admin_formsets"]:
        add(inline.formset.management_form)
        for form in inline.formset.forms:
            add(form)
    data.update(changes)
    return data


def error_text(response) -> str:
    """Every error the admin form shows (field and non-field, inlines included), as one string."""
    form = response.context["adminform"].form
    errors = [str(e) for e in form.errors.values()]
    for inline in response.context["inline_admin_formsets"]:
        errors += [str(e) for e in inline.formset.errors] + [str(e) for e in inline.formset.non_form_errors()]
    return " ".join(errors)


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    """The default PBKDF2 hasher makes each user cost a noticeable fraction of a second; tests log in by force."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def depot_world(two_depots):
    """``two_depots`` with one object of every admin model in each depot, and an organisation apart.

    ``seen_by_manager_a`` holds, per model, a row depot A's manager must see; ``hidden_from_manager_a`` a row
    they must not (``None`` for the shared vehicle catalogue).
    """
    from django.utils import timezone

    from citydata.models import FeedSettings, NgsiNotification, NgsiSubscription
    from csms.models import ChargePoint, IdToken, ProfileDelivery, Transaction
    from fleet.models import VehicleApiKey
    from jobs.models import JobRun
    from notifications.models import Delivery, NotificationRule, WebhookEndpoint
    from timetable.models import FeedImport, PinnedAssignment, TimetableBlock

    now = timezone.now()

    w = two_depots
    org = w["org"]
    w["viewer_a"] = f.UserFactory(username="viewer_a")
    f.MembershipFactory(user=w["viewer_a"], depot=w["depot_a"], role="viewer")
    tomorrow = dt.date.today() + dt.timedelta(days=1)
    for side in ("a", "b"):
        depot, vehicle = w[f"depot_{side}"], w[f"vehicle_{side}"]
        w[f"block_{side}"] = f.BlockFactory(depot=depot, service_date=tomorrow)
        w[f"assignment_{side}"] = f.BlockAssignmentFactory(block=w[f"block_{side}"], vehicle=vehicle)
        w[f"pack_{side}"] = f.BatteryPackFactory(organization=org)
        w[f"installation_{side}"] = f.PackInstallationFactory(pack=w[f"pack_{side}"], vehicle=vehicle)
        w[f"observation_{side}"] = f.HealthObservationFactory(pack=w[f"pack_{side}"], soh_pct=93.5)
        w[f"charger_{side}"] = f.ChargerFactory(depot=depot)
        w[f"connector_{side}"] = f.ConnectorFactory(charger=w[f"charger_{side}"], connector_id=1)
        w[f"plan_{side}"] = plan_depot_night(depot=depot, service_night=tomorrow)
        w[f"alert_{side}"] = f.AlertFactory(depot=depot, organization=org, vehicle=vehicle)
        w[f"event_{side}"] = f.DepotEventFactory(depot=depot, connector=w[f"connector_{side}"])
        w[f"forecast_{side}"] = f.SoHForecastFactory(pack=w[f"pack_{side}"])
        w[f"api_key_{side}"] = vehicle_key_issue(vehicle=vehicle)[0]
        w[f"job_run_{side}"] = JobRun.objects.create(
            job="charging.plan", key=f"plan:depot={depot.pk}:night={tomorrow}", depot=depot, status="succeeded"
        )
        w[f"session_{side}"] = f.ChargingSessionFactory(depot=depot, vehicle=vehicle)
        # The charger's OCPP side (csms) and the people's notifications of the depot's alerts.
        w[f"charge_point_{side}"] = ChargePoint.objects.create(charger=w[f"charger_{side}"])
        w[f"id_token_{side}"] = IdToken.objects.create(token=f"TAG-{side}", vehicle=vehicle)
        w[f"transaction_{side}"] = Transaction.objects.create(
            charge_point=w[f"charge_point_{side}"], connector_number=1, transaction_id=f"tx-{side}", started_at=now
        )
        w[f"profile_delivery_{side}"] = ProfileDelivery.objects.create(
            plan=w[f"plan_{side}"], charge_point=w[f"charge_point_{side}"]
        )
        w[f"webhook_{side}"] = WebhookEndpoint.objects.create(
            organization=org if side == "a" else w.setdefault("webhook_org", f.OrganizationFactory(name="Other org")),
            name=f"city {side}",
            url="https://city.example/hook",
        )
        w[f"feed_import_{side}"] = FeedImport.objects.create(
            depot=depot, file_name="feed.zip", feed_sha256="0" * 64, service_from=tomorrow, service_to=tomorrow
        )
        w[f"timetable_block_{side}"] = TimetableBlock.objects.create(
            block=w[f"block_{side}"],
            feed_import=w[f"feed_import_{side}"],
            service_km=100.0,
            deadhead_km=5.0,
            season_factor=1.0,
            energy_kwh=126.0,
        )
        w[f"pin_{side}"] = PinnedAssignment.objects.create(
            block=w[f"block_{side}"], vehicle=vehicle, service_date=tomorrow
        )
        user = w["manager_a"] if side == "a" else w["staff_b"]
        w[f"rule_{side}"] = NotificationRule.objects.create(user=user, depot=depot)
        w[f"delivery_{side}"] = Delivery.objects.create(
            channel="email", user=user, to=f"{side}@example.org", subject="x"
        )
    # The city's feeds are organisation-wide: the other organisation's settings and subscriptions are hidden.
    for side, owner in (("a", org), ("b", w["webhook_org"])):
        w[f"feed_settings_{side}"] = FeedSettings.objects.create(organization=owner)
        w[f"subscription_{side}"] = NgsiSubscription.objects.create(
            organization=owner, entity_type="Vehicle", endpoint="https://broker.city.example/ngsi-ld/notify"
        )
        w[f"ngsi_notification_{side}"] = NgsiNotification.objects.create(
            subscription=w[f"subscription_{side}"], payload={}
        )
    w["tariff"] = f.TariffFactory(organization=org)
    w["season"] = f.TariffSeasonFactory(tariff=w["tariff"])
    f.TariffPeriodFactory(season=w["season"])
    f.DemandChargeFactory(tariff=w["tariff"])
    w["depot_a"].tariff = w["tariff"]
    w["depot_a"].save()

    w["other_org"] = f.OrganizationFactory(name="Transportes del Puerto")
    w["other_tariff"] = f.TariffFactory(organization=w["other_org"])
    w["other_season"] = f.TariffSeasonFactory(tariff=w["other_tariff"])
    f.DepotFactory(organization=w["other_org"], name="Guaymas")

    from batteries.models import BatteryPack, HealthObservation, PackInstallation, SoHForecast
    from charging.models import Alert, Charger, ChargingPlan, ChargingSession, DepotEvent, Tariff, TariffSeason
    from fleet.models import (
        Block,
        BlockAssignment,
        Depot,
        DepotMembership,
        Organization,
        Vehicle,
        VehicleModel,
    )

    w["seen_by_manager_a"] = {
        Organization: org,
        Depot: w["depot_a"],
        DepotMembership: DepotMembership.objects.get(user=w["manager_a"]),
        VehicleModel: w["vehicle_a"].model,
        Vehicle: w["vehicle_a"],
        Block: w["block_a"],
        BlockAssignment: w["assignment_a"],
        BatteryPack: w["pack_a"],
        PackInstallation: w["installation_a"],
        HealthObservation: w["observation_a"],
        Tariff: w["tariff"],
        TariffSeason: w["season"],
        Charger: w["charger_a"],
        ChargingPlan: w["plan_a"],
        Alert: w["alert_a"],
        DepotEvent: w["event_a"],
        SoHForecast: w["forecast_a"],
        JobRun: w["job_run_a"],
        VehicleApiKey: w["api_key_a"],
        ChargingSession: w["session_a"],
        ChargePoint: w["charge_point_a"],
        IdToken: w["id_token_a"],
        Transaction: w["transaction_a"],
        ProfileDelivery: w["profile_delivery_a"],
        WebhookEndpoint: w["webhook_a"],
        NotificationRule: w["rule_a"],
        Delivery: w["delivery_a"],
        FeedImport: w["feed_import_a"],
        TimetableBlock: w["timetable_block_a"],
        PinnedAssignment: w["pin_a"],
        FeedSettings: w["feed_settings_a"],
        NgsiSubscription: w["subscription_a"],
        NgsiNotification: w["ngsi_notification_a"],
    }
    w["hidden_from_manager_a"] = {
        Organization: w["other_org"],
        Depot: w["depot_b"],
        DepotMembership: DepotMembership.objects.get(user=w["staff_b"]),
        VehicleModel: None,
        Vehicle: w["vehicle_b"],
        Block: w["block_b"],
        BlockAssignment: w["assignment_b"],
        BatteryPack: w["pack_b"],
        PackInstallation: w["installation_b"],
        HealthObservation: w["observation_b"],
        Tariff: w["other_tariff"],
        TariffSeason: w["other_season"],
        Charger: w["charger_b"],
        ChargingPlan: w["plan_b"],
        Alert: w["alert_b"],
        DepotEvent: w["event_b"],
        SoHForecast: w["forecast_b"],
        JobRun: w["job_run_b"],
        VehicleApiKey: w["api_key_b"],
        ChargingSession: w["session_b"],
        ChargePoint: w["charge_point_b"],
        IdToken: w["id_token_b"],
        Transaction: w["transaction_b"],
        ProfileDelivery: w["profile_delivery_b"],
        WebhookEndpoint: w["webhook_b"],
        NotificationRule: w["rule_b"],
        Delivery: w["delivery_b"],
        FeedImport: w["feed_import_b"],
        TimetableBlock: w["timetable_block_b"],
        PinnedAssignment: w["pin_b"],
        FeedSettings: w["feed_settings_b"],
        NgsiSubscription: w["subscription_b"],
        NgsiNotification: w["ngsi_notification_b"],
    }
    return w
