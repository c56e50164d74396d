"""Alerts are worded when they are read, in the reader's language (issue 19: es-MX and de admins showed alert
texts in English). The row stores a message code and its parameters; the admin, the dashboard, the API and the
notifications word it through gettext in the active language. An alert stored before codes keeps its text."""

import re

import pytest
from django.core import mail
from django.urls import reverse
from django.utils.translation import get_language, gettext, override

from charging.alert_messages import ALERT_MESSAGES
from charging.models import Alert
from charging.planning import plan_depot_night
from notifications.models import NotificationRule
from notifications.services import notifications_run
from tests import factories as f
from tests.charging.test_planning import NIGHT, _bus_with_blocks
from tests.charging.test_planning import depot as depot  # noqa: F401  (the fixture)

pytestmark = pytest.mark.django_db

LANGUAGES = ["en", "es-mx", "de"]


@pytest.fixture
def short_bus_alert(depot):
    depot.grid_limit_kw = 20  # 8.5 h x 20 kW cannot give a 200 km bus what it needs
    depot.save()
    bus = _bus_with_blocks(depot)
    plan_depot_night(depot=depot, service_night=NIGHT)
    return bus, Alert.objects.get(kind=Alert.Kind.VEHICLE_NOT_READY)


def _worded(code: str, params: dict) -> str:
    """What the alert must read in the active language: the catalogue's template through gettext, filled in
    (a nested message worded the same way)."""
    filled = {k: _worded(v["code"], v["params"]) if isinstance(v, dict) else v for k, v in params.items()}
    return gettext(ALERT_MESSAGES[code]) % filled


def test_a_raised_alert_stores_a_code_and_parameters_not_english_text(short_bus_alert):
    bus, alert = short_bus_alert

    assert alert.message == ""
    assert alert.message_code == "vehicle_short_because"
    assert alert.message_params["vehicle"] == bus.fleet_number
    assert alert.message_params["shortfall_kwh"] > 0
    assert alert.message_params["reason"] == {"code": "reason_grid_limit", "params": {}}


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_alert_is_worded_in_the_active_language_with_its_parameters(short_bus_alert, language):
    bus, alert = short_bus_alert

    with override(language):
        text = alert.text
        expected = _worded(alert.message_code, alert.message_params)

    assert text == expected
    assert bus.fleet_number in text and f"{alert.message_params['shortfall_kwh']:.0f} kWh" in text
    assert "%(" not in text


def test_the_wording_goes_through_the_active_languages_catalogue(short_bus_alert, monkeypatch):
    """Until the catalogues translate the new messages, es-MX and de fall back to English; this proves each
    language's own translation is what the alert shows once it exists."""
    _bus, alert = short_bus_alert

    def translated(template):
        return f"[{get_language()}] {template}"

    monkeypatch.setattr("charging.alert_messages.gettext", translated)
    words = {}
    for language in LANGUAGES:
        with override(language):
            words[language] = alert.text

    assert len(set(words.values())) == 3  # different text per language
    for language, text in words.items():
        assert text.startswith(f"[{language}] {alert.message_params['vehicle']} will leave")
        assert f"short: [{language}] the grid limit." in text  # the nested reason in the same language


def test_an_alert_stored_before_codes_keeps_showing_its_text(depot):
    old = f.AlertFactory(depot=depot, message="Bus 9 will leave 20 kWh short.")
    with override("de"):
        assert old.text == "Bus 9 will leave 20 kWh short." == str(old)


def test_the_api_gives_the_message_in_the_requests_language_with_code_and_params(short_bus_alert, api_client, depot):
    _bus, alert = short_bus_alert
    manager = f.manager_of(depot)
    api_client.force_authenticate(manager)

    for language in LANGUAGES:
        body = api_client.get(f"/api/v1/alerts/{alert.pk}/", HTTP_ACCEPT_LANGUAGE=language).json()
        with override(language):
            assert body["message"] == _worded(alert.message_code, alert.message_params)
        assert (body["message_code"], body["message_params"]) == (alert.message_code, alert.message_params)


def test_the_admin_list_and_the_dashboard_word_the_alert_in_the_pages_language(short_bus_alert, client, depot):
    _bus, alert = short_bus_alert
    manager = f.manager_of(depot, is_staff=True)
    client.force_login(manager)

    for language in LANGUAGES:
        with override(language):
            expected = _worded(alert.message_code, alert.message_params)
        listing = client.get(reverse("admin:charging_alert_changelist"), HTTP_ACCEPT_LANGUAGE=language)
        assert expected in listing.content.decode()
        change = client.get(reverse("admin:charging_alert_change", args=[alert.pk]), HTTP_ACCEPT_LANGUAGE=language)
        assert expected in change.content.decode()
        dashboard = client.get(reverse("admin:index"), HTTP_ACCEPT_LANGUAGE=language).content.decode()
        assert expected[:100] in dashboard


def test_notifications_are_worded_in_the_site_language_not_the_triggering_requests(short_bus_alert, depot, settings):
    _bus, alert = short_bus_alert
    manager = f.manager_of(depot, email="ops@example.org")
    NotificationRule.objects.create(user=manager)

    with override("de"):  # e.g. run from a German admin's request: the recipient has no language of their own
        notifications_run()

    with override(settings.LANGUAGE_CODE):
        expected = _worded(alert.message_code, alert.message_params)
    assert expected in mail.outbox[0].subject and expected in mail.outbox[0].body


def test_every_catalogue_message_takes_named_parameters_only():
    # Translators reorder named parameters; a positional %s could not be moved.
    for code, template in ALERT_MESSAGES.items():
        assert not re.search(r"%[^(%]", template.replace("%%", "")), code
