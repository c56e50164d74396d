"""No English left in the Spanish (es-MX) and German (de) admin: the untranslated-string test.

Three checks, each naming what it finds so that updating the catalogues is one obvious step
(``make messages``, translate the listed msgids in ``locale/<lang>/LC_MESSAGES/django.po``, ``make messages``
again to compile):

1. **The catalogues cover the code.** ``makemessages`` extracts every msgid of our code and templates afresh
   (into a scratch directory, the same ignores as ``make messages``); each must have a translation in the
   compiled catalogue of each language. This sees strings on pages no test renders (API errors, e-mails), but
   not text that never went through gettext.
2. **The derived model and field names are extracted.** ``config/derived_names.py`` lists the names Django
   derives for our models and fields (``config/i18n.py``); a model or field added since is listed.
3. **The admin's own pages read in the language.** A superuser opens the dashboard, each of our apps'
   change lists, add forms and change forms (over the factories' data), the plan page, the battery health
   pages, the charger board, the fleet map and a vehicle's telemetry, in English, es-MX and German. While the
   pages render, every gettext lookup that the active language's catalogue does not know is recorded (a
   string wrapped in gettext but missing from the catalogue). Then a *pseudo-check* catches text that never
   went through gettext at all (a hard-coded label, an f-string, a form field's derived label): every text
   segment - text nodes and the title, aria-label, placeholder and button labels - that reads the same in
   the English and the translated page is suspect, unless it is the product's data (the values of the
   database's text fields: names, codes, serial numbers), a catalogue entry whose translation is the same
   word ("Depot", "Status" in German), or made only of numbers, units and acronyms that no language
   translates (``SAME_IN_EVERY_LANGUAGE``).

What it cannot see: text drawn by JavaScript from JSON (the charts' labels are checked in test_browser.py),
a page or branch of a template that the factories' data does not reach (an error message of a failing
re-plan, a pack with no forecast), free text that *is* data (an alert's stored message, a solver's status
line) and a translation that exists but is wrong. A phrase that differs from the English only in one
untranslated word inside it ("Seleccione alert a modificar") is caught by check 3's gettext record when the
word is a model name, since the name is looked up in the catalogue.
"""

from __future__ import annotations

import gettext
import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings
from django.contrib import admin
from django.core.management import call_command
from django.db import models
from django.test import override_settings
from django.urls import reverse
from django.utils.dates import MONTHS, MONTHS_3, MONTHS_AP
from django.utils.text import capfirst
from django.utils.translation import override, trans_real

from config.i18n import MSGIDS_FILE, derived_msgids_source, derived_names, project_app_configs
from tests import factories as f

LANGUAGES = [("es-mx", "es_MX"), ("de", "de")]
# Mirrors the Makefile's `messages` target.
IGNORED = [".venv", "var", "bench", "tests", "test-artifacts", "locale", ".git", "node_modules", "static"]
# Words no language here translates: units, currencies, acronyms, protocol and product names.
SAME_IN_EVERY_LANGUAGE = {
    "kW",
    "kWh",
    "Wh",
    "Ah",
    "km",
    "MXN",
    "EUR",
    "USD",
    "SoC",
    "SoH",
    "EFC",
    "OCPP",
    "CSV",
    "JSON",
    "API",
    "UTC",
    "MST",
    "CET",
    "CEST",
    "GTFS",
    "RT",
    "NGSI",
    "LD",
    "VIN",
    "RFID",
    "AC",
    "DC",
    "CCS",
    "J1772",
    "ID",
    "IDs",
    "URL",
    "HTTP",
    "HMAC",
    "SHA",
    "PK",
    "LP",
    "MILP",
    "HiGHS",
    "evfleet",
    "Celery",
    "Django",
    "js",
    "ISO",
    "EVSE",
    "eMAID",
    "IANA",
    "CFE",
    "GDMTH",
    "CHAdeMO",
    "GB",
    "Crontabs",
}
# Text of other projects' templates that they leave untranslated: the alt texts of Django's search icon
# (search_form.html) and boolean icons (``_boolean_icon``).
NOT_OURS = {"Search", "True", "False", "None"}
# Short words a language shares with English, read in a translated phrase ("PACK-A in B-0000").
SHARED_WORDS = {"de": {"in"}, "es-mx": set()}
# Per page: identifiers that read as English words. NGSI-LD entity types (Smart Data Models) are names.
IDENTIFIERS = {"/admin/citydata/ngsisubscription/": {"Vehicle", "EVChargingStation"}}


def mo_path(locale_dir: str) -> Path:
    return Path(settings.BASE_DIR) / "locale" / locale_dir / "LC_MESSAGES" / "django.mo"


def catalogue_keys(path: Path) -> set:
    with path.open("rb") as stream:
        return {key for key, text in gettext.GNUTranslations(stream)._catalog.items() if key and text}


def need_gettext_tools():
    if not (shutil.which("xgettext") and shutil.which("msgen") and shutil.which("msgfmt")):
        if os.environ.get("EVFLEET_REQUIRE_SERVICES") == "1":
            pytest.fail("gettext's tools (xgettext, msgen, msgfmt) are required: apt-get install gettext")
        pytest.skip("gettext's tools are not installed")


# --- 1. the catalogues cover the code --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def msgids_of_our_code(tmp_path_factory) -> set:
    """Every msgid in our code and templates, extracted as `make messages` does, as the keys of a compiled
    catalogue: "msgid", "context\\x04msgid", (msgid, 0) for a plural."""
    need_gettext_tools()
    scratch = tmp_path_factory.mktemp("makemessages")
    base = Path(settings.BASE_DIR)
    for entry in base.iterdir():
        if entry.name not in IGNORED:
            (scratch / entry.name).symlink_to(entry)
    (scratch / "locale").mkdir()
    with override_settings(LOCALE_PATHS=[scratch / "locale"]), pytest.MonkeyPatch.context() as patch:
        patch.chdir(scratch)
        call_command("makemessages", locale=["en"], symlinks=True, ignore_patterns=IGNORED, verbosity=0)
    po = scratch / "locale" / "en" / "LC_MESSAGES" / "django.po"
    filled, mo = scratch / "filled.po", scratch / "filled.mo"
    # msgen copies each msgid into its msgstr, so that msgfmt keeps every entry.
    subprocess.run(["msgen", "-o", str(filled), str(po)], check=True)
    subprocess.run(["msgfmt", "-o", str(mo), str(filled)], check=True)
    keys = catalogue_keys(mo)
    assert len(keys) > 500, "makemessages found too little: is the scratch tree right?"
    return keys


def readable(key) -> str:
    if isinstance(key, tuple):
        return f"{key[0]!r} (plural)"
    context, _, msgid = key.rpartition("\x04")
    return f"{msgid!r} (context {context!r})" if context else repr(msgid)


@pytest.mark.parametrize(("language", "locale_dir"), LANGUAGES)
def test_every_msgid_of_our_code_has_a_translation(msgids_of_our_code, language, locale_dir):
    translated = catalogue_keys(mo_path(locale_dir))
    missing = sorted((readable(k) for k in msgids_of_our_code - translated), key=str.lower)
    assert not missing, (
        f"{len(missing)} msgid(s) of our code have no {language} translation. Run `make messages`, translate them "
        f"in locale/{locale_dir}/LC_MESSAGES/django.po, run `make messages` again:\n  " + "\n  ".join(missing)
    )


# --- 2. the derived names are extracted -------------------------------------------------------------------------


def test_the_derived_model_and_field_names_are_written_for_makemessages():
    written = MSGIDS_FILE.read_text(encoding="utf-8")
    names = derived_names()
    missing = [name for name in names if f"_({name!r})" not in written and f'_("{name}")' not in written]
    assert not missing, f"{MSGIDS_FILE.name} lacks {missing}: run `make messages`"
    assert written == derived_msgids_source(names), f"{MSGIDS_FILE.name} is stale: run `make messages`"
    assert {"battery pack", "battery packs", "fleet number", "charging plans"} <= set(names)


# --- 3. the admin's own pages -----------------------------------------------------------------------------------


class TextSegments(HTMLParser):
    """The text a person reads on a page: text nodes and the attributes shown as text, whitespace-normalised.
    Scripts, styles, JSON data and the values of form inputs (what was stored) are left out."""

    SHOWN_ATTRIBUTES = ("title", "aria-label", "placeholder", "alt")

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.segments: set[str] = set()
        self._skip = 0

    def _add(self, text: str | None) -> None:
        text = " ".join((text or "").split())
        if text:
            self.segments.add(text)

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag in ("script", "style", "textarea"):
            self._skip += 1
        for name in self.SHOWN_ATTRIBUTES:
            self._add(attributes.get(name))
        if tag == "input" and attributes.get("type") in ("submit", "button"):
            self._add(attributes.get("value"))

    def handle_endtag(self, tag):
        if tag in ("script", "style", "textarea") and self._skip:
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self._add(data)


def segments_of(html: str) -> set[str]:
    parser = TextSegments()
    parser.feed(html)
    return parser.segments


def translated(translation, key):
    """The language's text for a catalogue key, through the language's fallbacks (es-MX falls back to Django's
    es) but not the English default that every language falls back to last; None if it has none."""
    while translation is not None:
        if isinstance(translation, trans_real.DjangoTranslation) and translation.language().startswith("en"):
            return None
        text = translation._catalog.get(key) if getattr(translation, "_catalog", None) is not None else None
        if text:
            return text
        translation = translation._fallback
    return None


class MissedLookups:
    """Records each gettext lookup the active catalogue does not know, while a page renders."""

    def __init__(self):
        self.missed: set[str] = set()

    def install(self, patch: pytest.MonkeyPatch) -> None:
        original_gettext = trans_real.DjangoTranslation.gettext
        original_ngettext = trans_real.DjangoTranslation.ngettext
        record = self

        def gettext_recording(translation, message):
            if translation.language() in record.watched and translated(translation, message) is None:
                record.missed.add(message)
            return original_gettext(translation, message)

        def ngettext_recording(translation, singular, plural, number):
            if translation.language() in record.watched and translated(translation, (singular, 0)) is None:
                record.missed.add(singular)
            return original_ngettext(translation, singular, plural, number)

        patch.setattr(trans_real.DjangoTranslation, "gettext", gettext_recording)
        patch.setattr(trans_real.DjangoTranslation, "ngettext", ngettext_recording)

    watched = {language for language, _ in LANGUAGES}


@pytest.fixture
def admin_world(fleet_world):
    """``fleet_world`` (two depots with plans, packs, forecasts, alerts) and a row of each kind the factories
    make, so that the change lists have rows and the change forms have an object."""
    w = fleet_world
    depot, vehicle = w["depot_a"], w["vehicle_a"]
    tariff = f.TariffFactory(organization=w["org"])
    season = f.TariffSeasonFactory(tariff=tariff)
    f.TariffPeriodFactory(season=season)
    f.DemandChargeFactory(tariff=tariff)
    block = f.BlockFactory(depot=depot)
    f.BlockAssignmentFactory(block=block, vehicle=vehicle)
    f.DepotEventFactory(depot=depot, vehicle=vehicle)
    f.ChargingSessionFactory(vehicle=vehicle, depot=depot)
    w["superuser"] = f.UserFactory(username="root", is_staff=True, is_superuser=True)
    return w


def our_admin_pages(w) -> list[str]:
    urls = [
        reverse("admin:index"),
        reverse("admin:charging_chargingplan_overview", args=[w["plan_a"].pk]),
        reverse("admin:batteries_batterypack_health", args=[w["pack_a"].pk]),
        reverse("admin:batteries_batterypack_fleet_health"),
        reverse("admin:csms_chargepoint_board"),
        reverse("admin:citydata_fleet_map"),
        reverse("admin:fleet_vehicle_telemetry", args=[w["vehicle_a"].pk]),
        reverse("admin:timetable_feedimport_upload"),
    ]
    ours = {config.label for config in project_app_configs()}
    for model in sorted(admin.site._registry, key=lambda m: m._meta.label):
        meta = model._meta
        if meta.app_label not in ours:
            continue
        urls.append(reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist"))
        urls.append(reverse(f"admin:{meta.app_label}_{meta.model_name}_add"))
        first = model._default_manager.order_by("pk").first()
        if first is not None:
            urls.append(reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[first.pk]))
    return urls


def data_strings() -> list[str]:
    """The database's text values (names, codes, serials, messages) and the language names of the switcher:
    what a page shows as stored, in every language. Longest first, so that a long value is removed whole."""
    values = {name for _code, name in settings.LANGUAGES}
    for model in apps.get_models():
        text_fields = [
            field.attname
            for field in model._meta.concrete_fields
            if isinstance(field, models.CharField | models.TextField) and not field.choices
        ]
        json_fields = [field.attname for field in model._meta.concrete_fields if isinstance(field, models.JSONField)]
        if text_fields:
            for row in model._default_manager.values_list(*text_fields):
                values.update(str(value) for value in row if value)
        for field in json_fields:  # the strings inside stored JSON (connector standards, period names)
            for value in model._default_manager.values_list(field, flat=True):
                values.update(re.findall(r'"([^"]+)"', json.dumps(value)))
    return sorted((v for v in values if len(v) > 1), key=len, reverse=True)


WORD = re.compile(r"[^\W\d_]{2,}")  # letters only: "v1", "B-0000" and "12:30" are not words


def reads_as_english(segment: str, data: list[str], same_word, shared_words: set[str]) -> bool:
    """True if the segment has a word left once data, numbers, units and acronyms are taken out."""
    segment = segment.strip("›:* ")
    if same_word(segment):
        return False
    for value in data:
        if value in segment:
            segment = re.sub(rf"(?<!\w){re.escape(value)}(?!\w)", " ", segment)
    return any(
        word not in SAME_IN_EVERY_LANGUAGE and word not in shared_words and not same_word(word)
        for word in WORD.findall(segment)
    )


def test_the_admin_pages_show_no_english_in_spanish_or_german(client, admin_world, monkeypatch):
    w = admin_world
    client.force_login(w["superuser"])
    lookups = MissedLookups()
    lookups.install(monkeypatch)

    rendered: dict[str, dict[str, set[str]]] = {}
    for url in our_admin_pages(w):
        for language in ("en", *(code for code, _ in LANGUAGES)):
            response = client.get(url, HTTP_ACCEPT_LANGUAGE=language)
            if response.status_code == 403 and url.endswith("/add/"):
                break  # a read-only model (its rows are made by the system): no add form to read
            assert response.status_code == 200, f"{url} in {language}: {response.status_code}"
            rendered.setdefault(url, {})[language] = segments_of(response.content.decode())

    # The switcher names each language in its own language: {% get_available_languages %} looks them up.
    missed = sorted(lookups.missed - {name for _code, name in settings.LANGUAGES}, key=str.lower)

    data = data_strings()
    english_left: dict[str, set[str]] = {}
    for language, _locale_dir in LANGUAGES:
        translation = trans_real.translation(language)
        with override(language):  # month names the language shares with English ("Jun" in German)
            months = {str(name) for table in (MONTHS, MONTHS_3, MONTHS_AP) for name in table.values()}

        def same_word(text: str, translation=translation, months=months) -> bool:
            # A msgid whose translation is the same word: "Depot" is German too. Labels are capitalised.
            if text in months or text.lower() in months:
                return True
            for form in (text, text[:1].lower() + text[1:]):
                shown = translated(translation, form)
                if shown is not None and capfirst(shown) == capfirst(text):
                    return True
            return False

        for url, pages in rendered.items():
            allowed = NOT_OURS | next((ids for page, ids in IDENTIFIERS.items() if url.startswith(page)), set())
            for segment in pages["en"] & pages[language] - allowed:
                if reads_as_english(segment, data, same_word, SHARED_WORDS[language]):
                    english_left.setdefault(f"{language} {url}", set()).add(segment)
    problems = []
    if missed:
        problems.append(
            f"{len(missed)} string(s) on the admin's pages have no translation in the catalogues. Run `make messages` "
            "and translate them in locale/es_MX and locale/de:\n  " + "\n  ".join(map(repr, missed))
        )
    if english_left:
        problems.append(
            "English text on the translated admin pages (not passed through gettext: wrap it in gettext, then "
            "`make messages` and translate it; or, if it is a word every language shares, SAME_IN_EVERY_LANGUAGE):\n"
            + "\n".join(f"  {page}: {sorted(segments)}" for page, segments in sorted(english_left.items()))
        )
    assert not problems, "\n\n".join(problems)
