"""English and Mexican Spanish: the product's own words are translated, and numbers follow the language."""

from __future__ import annotations

import gettext
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import translation

pytestmark = pytest.mark.django_db

CATALOG = Path(settings.BASE_DIR) / "locale" / "es_MX" / "LC_MESSAGES" / "django.mo"


def test_the_compiled_spanish_catalog_translates_every_message():
    assert CATALOG.exists(), "run `manage.py compilemessages -l es_MX`"
    with CATALOG.open("rb") as stream:
        catalog = gettext.GNUTranslations(stream)
    untranslated = [msgid for msgid, text in catalog._catalog.items() if msgid and not text]
    assert untranslated == []
    assert len(catalog._catalog) > 300


@pytest.mark.parametrize(
    ("english", "spanish"),
    [
        ("Tonight in your depots", "Esta noche en sus depósitos"),
        ("Re-plan now", "Volver a planificar ahora"),
        ("Vehicle will not be ready", "El vehículo no estará listo"),
        ("In service", "En servicio"),
    ],
)
def test_key_labels_read_in_mexican_spanish(english, spanish):
    with translation.override("es-mx"):
        assert translation.gettext(english) == spanish


def test_the_language_follows_the_browser_and_the_switcher(client, fleet_world):
    w = fleet_world
    client.force_login(w["manager_a"])
    page = client.get(reverse("admin:index"), HTTP_ACCEPT_LANGUAGE="es-MX,es;q=0.9").content.decode()
    assert 'lang="es-mx"' in page and "Esta noche en sus depósitos" in page and "Plan de esta noche" in page
    assert 'id="language-select"' in page

    # The switcher stores the choice; it wins over the browser's header from then on.
    response = client.post(reverse("set_language"), {"language": "en", "next": reverse("admin:index")})
    assert response.status_code == 302
    page = client.get(reverse("admin:index"), HTTP_ACCEPT_LANGUAGE="es-MX").content.decode()
    assert 'lang="en"' in page and "Tonight in your depots" in page


# Fixed "made" times, one with a day and month below 10 (zero-padded by both formats) and one above: the
# page's dates must not depend on the day the suite runs. Shown in the depot's zone (Hermosillo, UTC-7): 05:06
# UTC on 4 March is 22:06 on the 3rd there.
@pytest.mark.parametrize(
    ("made", "english_date", "spanish_date"),
    [
        (datetime(2026, 3, 4, 5, 6, tzinfo=UTC), "03/03/2026 22:06 MST", "03/03/2026 22:06 MST"),
        (datetime(2026, 12, 16, 21, 30, tzinfo=UTC), "12/16/2026 14:30 MST", "16/12/2026 14:30 MST"),
    ],
)
def test_dates_and_numbers_on_the_plan_page_follow_the_language(client, fleet_world, made, english_date, spanish_date):
    w = fleet_world
    plan = w["plan_a"]
    type(plan).objects.filter(pk=plan.pk).update(created_at=made)  # auto_now_add: only an UPDATE can set it
    client.force_login(w["manager_a"])
    url = reverse("admin:charging_chargingplan_overview", args=[plan.pk])
    english = client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    spanish = client.get(url, HTTP_ACCEPT_LANGUAGE="es-MX").content.decode()
    # shown as "made <date time zone>": m/d/Y in English, d/m/Y in Mexico
    assert english_date in english
    assert spanish_date in spanish
    assert "Potencia del depósito por vehículo" in spanish
