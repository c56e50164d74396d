"""Times a manager reads are the depot's local times, labelled with the zone, in the language's one format.

Each test reads the rendered page and compares it with the database row converted by the standard library
(``zoneinfo`` + ``strftime``), not by the code under test. The API keeps ISO 8601 with offsets.
"""

from __future__ import annotations

import datetime as dt
import html
import re
import zoneinfo

import pytest
from django.urls import reverse
from django.utils import timezone, translation

from charging.models import Alert, ChargingPlan
from fleet.local_time import local_datetime_label
from fleet.models import Depot
from jobs.models import JobRun

UTC = dt.UTC
# The short date and time each language shows (config/formats/<lang>/formats.py), as strftime patterns.
STRFTIME = {"en": "%m/%d/%Y %H:%M", "es-MX": "%d/%m/%Y %H:%M", "de": "%d.%m.%Y %H:%M"}


def expected(moment: dt.datetime, zone: str, language: str) -> str:
    local = moment.astimezone(zoneinfo.ZoneInfo(zone))
    return f"{local.strftime(STRFTIME[language])} {local.tzname()}"


def text_of(page: str, pattern: str) -> str:
    match = re.search(pattern, page, re.S)
    assert match, f"{pattern!r} not on the page"
    return html.unescape(re.sub(r"\s+", " ", match.group(1)).strip())


@pytest.mark.parametrize(
    ("zone", "made", "language"),
    [
        # A Hermosillo evening is already tomorrow in UTC: the page must say the local evening.
        ("America/Hermosillo", dt.datetime(2026, 12, 6, 3, 26, tzinfo=UTC), "en"),
        ("America/Hermosillo", dt.datetime(2026, 3, 4, 5, 6, tzinfo=UTC), "es-MX"),
        # Berlin in summer time (CEST) and in winter time (CET).
        ("Europe/Berlin", dt.datetime(2026, 7, 1, 22, 30, tzinfo=UTC), "en"),
        ("Europe/Berlin", dt.datetime(2026, 1, 9, 23, 30, tzinfo=UTC), "es-MX"),
    ],
)
def test_the_plan_page_says_when_the_plan_was_made_in_the_depot_zone(client, fleet_world, zone, made, language):
    w = fleet_world
    plan = w["plan_a"]
    Depot.objects.filter(pk=plan.depot_id).update(time_zone=zone)
    ChargingPlan.objects.filter(pk=plan.pk).update(created_at=made)
    client.force_login(w["manager_a"])

    page = client.get(
        reverse("admin:charging_chargingplan_overview", args=[plan.pk]), HTTP_ACCEPT_LANGUAGE=language
    ).content.decode()

    stored = ChargingPlan.objects.get(pk=plan.pk).created_at
    assert expected(stored, zone, language) in page
    assert stored.astimezone(UTC).strftime(STRFTIME[language]) not in page  # not the UTC reading
    assert zone in page  # "Times in the depot's time zone (...)"


def test_the_dashboard_shows_the_last_plan_job_run_and_alerts_in_each_depot_zone(client, fleet_world):
    w = fleet_world
    Depot.objects.filter(pk=w["depot_b"].pk).update(time_zone="Europe/Berlin")
    finished = dt.datetime(2026, 12, 6, 3, 26, tzinfo=UTC)
    JobRun.objects.create(
        job="charging.plan_depot_night",
        key="k-a",
        depot=w["depot_a"],
        status=JobRun.Status.SUCCEEDED,
        started_at=finished - dt.timedelta(seconds=5),
        finished_at=finished,
        duration_seconds=5.0,
    )
    JobRun.objects.filter(key="k-a").update(created_at=timezone.now())
    client.force_login(w["manager_a"])

    page = client.get(reverse("admin:index"), HTTP_ACCEPT_LANGUAGE="es-MX").content.decode()
    card = text_of(page, r'(<article[^>]*data-depot="hmo".*?</article>)')

    last_plan = max(ChargingPlan.objects.filter(depot=w["depot_a"]).values_list("created_at", flat=True))
    assert text_of(card, r'<time class="evf-last-plan"[^>]*>(.*?)</time>') == expected(
        last_plan, "America/Hermosillo", "es-MX"
    )
    assert expected(finished, "America/Hermosillo", "es-MX") in card  # 05/12/2026 20:26 MST
    assert "05/12/2026 20:26 MST" in card  # the same, by hand: the evening before in Hermosillo
    alert = Alert.objects.get(pk=w["alert_a"].pk)
    assert expected(alert.created_at, "America/Hermosillo", "es-MX") in card
    assert "UTC" not in card


def test_cross_depot_lists_show_each_row_in_its_depot_zone(client, fleet_world, django_user_model):
    w = fleet_world
    Depot.objects.filter(pk=w["depot_b"].pk).update(time_zone="Europe/Berlin")
    raised = dt.datetime(2026, 7, 1, 22, 30, tzinfo=UTC)
    Alert.objects.filter(pk=w["alert_a"].pk).update(created_at=raised)
    Alert.objects.filter(pk=w["alert_b"].pk).update(created_at=raised)
    admin = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(admin)

    page = client.get(reverse("admin:charging_alert_changelist"), HTTP_ACCEPT_LANGUAGE="en").content.decode()

    assert "07/01/2026 15:30 MST" in page  # Hermosillo: UTC-7 all year
    assert "07/02/2026 00:30 CEST" in page  # Berlin in summer: UTC+2, already the next day


def test_the_label_follows_the_language_format():
    moment = dt.datetime(2026, 3, 4, 5, 6, tzinfo=UTC)
    for language in ("en", "es-MX", "de"):
        with translation.override(language):
            assert local_datetime_label(moment, "Europe/Berlin") == expected(moment, "Europe/Berlin", language)
    with translation.override("de"):
        assert local_datetime_label(moment, "Europe/Berlin") == "04.03.2026 06:06 CET"
    assert local_datetime_label(None) == ""


def test_other_admin_pages_read_times_in_the_default_depot_zone(client, fleet_world, django_user_model, settings):
    run = JobRun.objects.create(job="x.y", key="k-b", depot=None, status=JobRun.Status.SUCCEEDED)
    moment = dt.datetime(2026, 12, 6, 3, 26, tzinfo=UTC)
    JobRun.objects.filter(pk=run.pk).update(started_at=moment, finished_at=moment)
    admin = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(admin)

    detail = client.get(reverse("admin:jobs_jobrun_change", args=[run.pk]), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    listing = client.get(reverse("admin:jobs_jobrun_changelist"), HTTP_ACCEPT_LANGUAGE="en").content.decode()

    assert settings.EVFLEET_DEFAULT_DEPOT_TIME_ZONE == "America/Hermosillo"
    assert "12/05/2026 20:26" in detail or "Dec. 5, 2026, 20:26" in detail  # a read-only field: local, not UTC
    assert "03:26" not in detail
    assert "12/05/2026 20:26 MST" in listing  # fleet-wide run: the default depot zone, labelled


def test_the_api_keeps_iso_8601_with_offsets(client, fleet_world):
    w = fleet_world
    plan = w["plan_a"]
    client.force_login(w["manager_a"])
    body = client.get(f"/api/v1/charging-plans/{plan.pk}/").json()
    created = dt.datetime.fromisoformat(body["created_at"].replace("Z", "+00:00"))
    assert created.utcoffset() is not None
    assert created == ChargingPlan.objects.get(pk=plan.pk).created_at
