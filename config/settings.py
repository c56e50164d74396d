"""evfleet settings: one module, everything read from the environment.

The defaults are the *embedded* mode: a SQLite file under ``var/`` and Celery tasks run in-process, so
``make demo`` works on a machine with no servers. Production sets ``DJANGO_ENV=production`` plus
``DATABASE_URL``, ``REDIS_URL``, ``SECRET_KEY`` and ``ALLOWED_HOSTS`` (see README, "Production").
"""

from pathlib import Path
from typing import Any

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)  # optional; absent in CI

DJANGO_ENV = env.str("DJANGO_ENV", default="development")
IS_PRODUCTION = DJANGO_ENV == "production"
DEBUG = env.bool("DEBUG", default=not IS_PRODUCTION)

if DEBUG:
    SECRET_KEY = env.str("SECRET_KEY", default="dev-only-insecure-key-never-use-in-production-3b1f")
else:
    SECRET_KEY = env.str("SECRET_KEY")  # no default: production must set a real one

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "jobs",
    "fleet",
    "batteries",
    "charging",
    "notifications",
    "csms",
    "timetable",
    "citydata",
    "console",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
# Django 6's default for a URL typed without a scheme (webhook endpoints), taken now.
FORMS_URLFIELD_ASSUME_HTTPS = True
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'evfleet.sqlite3'}"),
}
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DB_CONN_MAX_AGE", default=60))
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded database is a single file; WAL lets the dev server and in-process jobs read while one writes.
    # IMMEDIATE: a transaction takes the write lock when it begins, waiting up to the timeout; a deferred one that
    # reads and then writes fails at once with "database is locked" when another process writes (the demo runs
    # the web app, the OCPP central system and the simulator on one file).
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL;",
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
# The process's role: "web" (gunicorn, runserver, manage.py commands, beat) or "worker" (a Celery worker: config/
# celery.py says so when Celery's command line starts one). PostgreSQL's JIT compiles every query whose estimated
# cost passes jit_above_cost; for the web's short queries the compilation costs more than it saves (46 of the 49 ms
# of a manager's pack count with the old pack rule, docs/operations.md "City scale"), so the web's connections turn
# it off. A worker keeps the server's setting for the nightly analytical queries. EVFLEET_DB_JIT overrides the
# role's choice: "on", "off" or "server" (send nothing: the server's or the database role's own setting, e.g. behind
# PgBouncer, which refuses a startup option it does not track).
EVFLEET_PROCESS_ROLE = env.str("EVFLEET_PROCESS_ROLE", default="web")
EVFLEET_DB_JIT = env.str("EVFLEET_DB_JIT", default="off" if EVFLEET_PROCESS_ROLE == "web" else "server")


def _check_choice(variable: str, value: str, choices: tuple[str, ...]) -> None:
    from django.core.exceptions import ImproperlyConfigured

    if value not in choices:
        raise ImproperlyConfigured(f"{variable}={value!r}: give one of {', '.join(choices)}")


_check_choice("EVFLEET_PROCESS_ROLE", EVFLEET_PROCESS_ROLE, ("web", "worker"))
_check_choice("EVFLEET_DB_JIT", EVFLEET_DB_JIT, ("on", "off", "server"))
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and EVFLEET_DB_JIT != "server":
    # libpq's startup options: set when the connection opens, no extra round trip; kept after options of the URL.
    _db_options = DATABASES["default"].setdefault("OPTIONS", {})
    _db_options["options"] = f"{_db_options.get('options', '')} -c jit={EVFLEET_DB_JIT}".strip()
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    # Redis, failing open to a per-process memory cache while Redis is away (config/cache.py): rate limits and
    # re-plan markers must not turn a Redis outage into an API outage. Short timeouts: a hung Redis costs a
    # request at most about a second, then the fallback is used without waiting for RETRY_AFTER_S.
    CACHES = {
        "default": {
            "BACKEND": "config.cache.FailoverRedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 1.0},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Everything is stored in UTC; each depot carries its own local time zone for plans and schedules.
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("es-mx", "Español (México)"), ("de", "Deutsch")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
# One date format per language (config/formats/<lang>/formats.py); people read times in a depot's zone
# (fleet/local_time.py), the admin's cross-depot pages in the default depot zone (console/admin_site.py).
FORMAT_MODULE_PATH = "config.formats"
EVFLEET_DEFAULT_DEPOT_TIME_ZONE = env.str("EVFLEET_DEFAULT_DEPOT_TIME_ZONE", default="America/Hermosillo")

STATIC_URL = "static/"
# Project files served as static: the admin's styles and the vendored chart library (no CDN: works offline).
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env.path("STATIC_ROOT", default=VAR_DIR / "static")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if IS_PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

REST_FRAMEWORK: dict[str, Any] = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"]
    + (["rest_framework.renderers.BrowsableAPIRenderer"] if DEBUG else []),
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
        "rest_framework.filters.SearchFilter",
    ],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "config.api.exception_handler",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "evfleet API",
    "DESCRIPTION": "EV fleet and battery management: registry, telemetry, depot charging plans, battery health.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Built once per process and language, not per request (config/schema.py).
    "DEFAULT_GENERATOR_CLASS": "config.schema.CachedSchemaGenerator",
    # One tag per area (config.schema.API_AREAS), in this order.
    "TAGS": [
        {"name": "registry", "description": "Organisations, depots, memberships, vehicle models, vehicles, blocks."},
        {"name": "telemetry", "description": "Vehicles' readings, live state and duty cycles."},
        {"name": "batteries", "description": "Battery packs, installations, health observations and forecasts."},
        {"name": "charging", "description": "Chargers, tariffs, tonight's plans, depot events, alerts, sessions."},
        {"name": "notifications", "description": "Who hears of an alert and how."},
        {"name": "ocpp", "description": "The chargers' side: charge points and the profiles delivered to them."},
        {"name": "timetable", "description": "Timetable imports, pinned assignments, buses assigned to blocks."},
        {"name": "city data", "description": "Feeds for the city: GTFS-Realtime vehicle positions."},
        {"name": "auth", "description": "Tokens."},
    ],
    # Several models have a "status" with different choices: name their enums so the schema is stable.
    "ENUM_NAME_OVERRIDES": {
        "VehicleStatusEnum": "fleet.models.Vehicle.Status",
        "ConnectorStandardEnum": "fleet.models.ConnectorStandard",
        "ChargerStatusEnum": "charging.models.Charger.Status",
        "ChargingPlanStatusEnum": "charging.models.ChargingPlan.Status",
        "AlertStatusEnum": "charging.models.Alert.Status",
        # Charging sessions also have a "source": keep the health observations' enum under its old name.
        "SourceEnum": "batteries.models.HealthObservation.Source",
    },
}

# Telemetry uploads (docs/telemetry.md): readings per batch and bytes per request; over either: 413.
EVFLEET_TELEMETRY_MAX_BATCH = env.int("EVFLEET_TELEMETRY_MAX_BATCH", default=5000)
EVFLEET_TELEMETRY_MAX_BYTES = env.int("EVFLEET_TELEMETRY_MAX_BYTES", default=4 * 1024 * 1024)
# MQTT input (docs/telemetry.md "MQTT"): the broker `mqtt_ingest` reads, its own login, and the broker's
# dynamic-security admin login that evfleet uses to give each vehicle key its broker credentials (off: keys
# work over HTTP only and the broker's own configuration decides who may publish).
EVFLEET_MQTT_BROKER_URL = env.str("EVFLEET_MQTT_BROKER_URL", default="mqtt://127.0.0.1:1883")
EVFLEET_MQTT_USERNAME = env.str("EVFLEET_MQTT_USERNAME", default="")
EVFLEET_MQTT_PASSWORD = env.str("EVFLEET_MQTT_PASSWORD", default="")
EVFLEET_MQTT_DYNSEC = env.bool("EVFLEET_MQTT_DYNSEC", default=False)
EVFLEET_MQTT_ADMIN_USERNAME = env.str("EVFLEET_MQTT_ADMIN_USERNAME", default="")
EVFLEET_MQTT_ADMIN_PASSWORD = env.str("EVFLEET_MQTT_ADMIN_PASSWORD", default="")

# Domain settings (docs/planning.md, docs/forecast.md, docs/operations.md).
EVFLEET_READINESS_RESERVE_PCT = env.float("EVFLEET_READINESS_RESERVE_PCT", default=10.0)
EVFLEET_STANDBY_SOC_PCT = env.float("EVFLEET_STANDBY_SOC_PCT", default=60.0)
# A vehicle on its block is planned from its live SoC only when the reading is at most this old.
EVFLEET_LIVE_SOC_MAX_AGE_MINUTES = env.float("EVFLEET_LIVE_SOC_MAX_AGE_MINUTES", default=15.0)
EVFLEET_DEFAULT_ENERGY_PRICE_PER_KWH = env.float("EVFLEET_DEFAULT_ENERGY_PRICE_PER_KWH", default=1.5)
EVFLEET_FORECAST_HORIZON_YEARS = env.float("EVFLEET_FORECAST_HORIZON_YEARS", default=10.0)
EVFLEET_FORECAST_CHUNK_SIZE = env.int("EVFLEET_FORECAST_CHUNK_SIZE", default=200)
EVFLEET_TELEMETRY_RETENTION_DAYS = env.int("EVFLEET_TELEMETRY_RETENTION_DAYS", default=90)
# Local times of the nightly stages for every depot, overriding each stage's own, e.g. {"TELEMETRY": "00:30"}.
EVFLEET_NIGHTLY_JOB_TIMES = env.json("EVFLEET_NIGHTLY_JOB_TIMES", default={})
# Charges found in telemetry away from depots: grid energy = battery energy / efficiency; "away" = this far
# from every depot of the organisation.
EVFLEET_AWAY_CHARGING_EFFICIENCY = env.float("EVFLEET_AWAY_CHARGING_EFFICIENCY", default=0.90)
EVFLEET_DEPOT_RADIUS_M = env.float("EVFLEET_DEPOT_RADIUS_M", default=500.0)
# The OCPP central system (csms, docs/ocpp.md).
EVFLEET_CSMS_HEARTBEAT_S = env.int("EVFLEET_CSMS_HEARTBEAT_S", default=300)
EVFLEET_CSMS_RESPONSE_TIMEOUT_S = env.float("EVFLEET_CSMS_RESPONSE_TIMEOUT_S", default=15.0)
EVFLEET_CSMS_MESSAGES_PER_MINUTE = env.int("EVFLEET_CSMS_MESSAGES_PER_MINUTE", default=120)
EVFLEET_CSMS_SCAN_S = env.float("EVFLEET_CSMS_SCAN_S", default=1.0)
EVFLEET_CSMS_DB_THREADS = env.int("EVFLEET_CSMS_DB_THREADS", default=8)

# Celery. No broker configured: run tasks eagerly in-process (embedded mode).
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=30 * 60)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=35 * 60)
# Redis redelivers an unacked task after the visibility timeout: keep it longer than the longest task.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=2 * 3600)}
# Installed into django_celery_beat's tables by the database scheduler at start-up.
CELERY_BEAT_SCHEDULE = {
    # The task outbox (jobs/outbox.py): what could not be queued while Redis was away is sent when it is back.
    "jobs.outbox_send": {
        "task": "jobs.tasks.outbox_send_task",
        "schedule": 30.0,
        "options": {"expires": 25},
    },
    "citydata.ngsi_notifications": {
        "task": "citydata.tasks.notify_ngsi_subscriptions",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    # Plans keeping headroom for unannounced arrivals hand it back each slot (charging.unscheduled).
    "charging.headroom_replans": {
        "task": "charging.tasks.headroom_replans_task",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    "notifications.run": {
        "task": "notifications.tasks.notifications_run_task",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
}

# Notifications (docs/notifications.md). E-mail goes through Django's mail (EMAIL_URL, e.g.
# smtp+tls://user:password@host:587); embedded mode prints mails, production defaults to an SMTP server on
# localhost; tests use the in-memory backend.
vars().update(env.email_url("EMAIL_URL", default="smtp://localhost:25" if IS_PRODUCTION else "consolemail://"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="evfleet <evfleet@localhost>")
NOTIFICATIONS_REPEAT_WINDOW_MINUTES = env.int("NOTIFICATIONS_REPEAT_WINDOW_MINUTES", default=60)
NOTIFICATIONS_DIGEST_MINUTES = env.int("NOTIFICATIONS_DIGEST_MINUTES", default=60)
NOTIFICATIONS_MAX_ALERT_AGE_HOURS = env.int("NOTIFICATIONS_MAX_ALERT_AGE_HOURS", default=24)
NOTIFICATIONS_CLAIM_LEASE_MINUTES = env.int("NOTIFICATIONS_CLAIM_LEASE_MINUTES", default=10)
NOTIFICATIONS_WEBHOOK_TIMEOUT_S = env.float("NOTIFICATIONS_WEBHOOK_TIMEOUT_S", default=10.0)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

if IS_PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_REFERRER_POLICY = "same-origin"
    X_FRAME_OPTIONS = "DENY"

# --- Hardening (issue 8; docs/security.md) ------------------------------------------------------------------
# One block on purpose: request size limits, security headers, login throttling and the audit trail.
# Bodies over these sizes answer 413 with JSON on /api/ (config.middleware.BodySizeLimitMiddleware): DRF reads
# its JSON from the stream, which Django's own DATA_UPLOAD_MAX_MEMORY_SIZE check never sees.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=2_621_440)  # Django's default, 2.5 MiB
DATA_UPLOAD_MAX_NUMBER_FIELDS = 1000
_COMMON_MIDDLEWARE_AT = MIDDLEWARE.index("django.middleware.common.CommonMiddleware")
MIDDLEWARE.insert(_COMMON_MIDDLEWARE_AT, "config.middleware.BodySizeLimitMiddleware")
# A database outage answers 503 with Retry-After (JSON on the API, a page in the admin), not a 500; errors no view
# handled answer JSON on /api/ (config/errors.py, handler400/403/404/500 in config/urls.py).
MIDDLEWARE.insert(
    MIDDLEWARE.index("whitenoise.middleware.WhiteNoiseMiddleware") + 1, "config.errors.DatabaseUnavailableMiddleware"
)
# Headers on every response (Django's defaults, stated so that a later default change cannot drop them).
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# JSON nested deeper than Python's recursion limit is a 400, not a RecursionError (500).
REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"] = ["config.parsers.JSONParser"]
# Every operation documents the errors it can answer (400/401/403/404/409/413/415), so clients and the
# schema fuzzer (tests/hardening/test_fuzz_schema.py) agree on them.
REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"] = "config.schema.AutoSchema"
# A malformed ?limit= or ?offset= is a 400 (DRF ignores it), and a page holds at most 1,000 rows.
REST_FRAMEWORK["DEFAULT_PAGINATION_CLASS"] = "config.pagination.LimitOffsetPagination"
# Filters: an out-of-range id, a boolean that is neither, or an empty value is a 400, not a 500 or a no-op.
REST_FRAMEWORK["DEFAULT_FILTER_BACKENDS"] = [
    "config.filtering.DjangoFilterBackend",
    *REST_FRAMEWORK["DEFAULT_FILTER_BACKENDS"][1:],
]
# Throttling (config/throttling.py: sign-in; config/rate_limits.py: the API). DRF throttles count in the default
# cache, which is Redis when REDIS_URL is set, so a count holds across every worker process; the locmem fallback
# is per process (fine for the embedded single-process mode). Rates in DRF's syntax ("600/min"); a malformed one
# stops the start-up here.
# - login: sign-in attempts per client address (token view and admin login together);
# - user, vehicle: API requests per user (token or session) and per vehicle (vehicle key);
# - telemetry_batch: uploads to the telemetry batch endpoint per vehicle (or per staff user), apart from the
#   requests above so that neither starves the other. 120/min is a 1,000-reading batch every half second.
# - config.query_params.QueryParameterCheck is no throttle: it sits here to run where throttles run (after
#   authentication and permissions) and answers 400 to a query parameter the operation's schema does not take.
REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"] = [
    "config.rate_limits.ApiRateThrottle",
    "config.query_params.QueryParameterCheck",
]


def _throttle_rate(variable: str, default: str) -> str:
    import re

    from django.core.exceptions import ImproperlyConfigured

    rate = env.str(variable, default=default)
    if not re.fullmatch(r"\d+/(s|sec|second|m|min|minute|h|hour|d|day)", rate):
        raise ImproperlyConfigured(f"{variable}={rate!r}: give requests per period, e.g. 600/min (s, min, hour, day)")
    return rate


# citydata: the live fleet map's tile server (an empty value draws the markers on a blank background).
EVFLEET_MAP_TILE_URL = env.str("EVFLEET_MAP_TILE_URL", default="https://tile.openstreetmap.org/{z}/{x}/{y}.png")
EVFLEET_MAP_TILE_ATTRIBUTION = env.str(
    "EVFLEET_MAP_TILE_ATTRIBUTION", default='&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a>'
)

REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] = {
    "login": _throttle_rate("EVFLEET_LOGIN_RATE", "10/min"),
    "user": _throttle_rate("EVFLEET_API_RATE_USER", "600/min"),
    "vehicle": _throttle_rate("EVFLEET_API_RATE_VEHICLE", "240/min"),
    "telemetry_batch": _throttle_rate("EVFLEET_API_RATE_TELEMETRY_BATCH", "120/min"),
    # citydata: the city feeds (GTFS-Realtime, NGSI-LD) per token, or per client address when public.
    "city_feed": _throttle_rate("EVFLEET_CITY_FEED_RATE", "120/min"),
}
# The client address (the sign-in throttle's key) is REMOTE_ADDR, or with NUM_PROXIES=N the X-Forwarded-For entry
# added by the outermost of the N reverse proxies in front of gunicorn. Default 0 in every mode: trusting a proxy
# that is not there lets a client reaching gunicorn directly forge its address with each attempt. Never "the
# whole header" (DRF's default for a blank setting): a client could vary it at will.
REST_FRAMEWORK["NUM_PROXIES"] = env.int("NUM_PROXIES", default=0)
# Audit trail (config/audit.py): django-simple-history records every save of the audited models (depots,
# tariffs with their seasons, periods and demand charges, blocks, chargers, connectors, plans) with the user
# of the request that made it; the admin's History page shows it. Reverting from that page is off: a revert
# would skip the services' validation (change the object instead).
INSTALLED_APPS.append("simple_history")
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.contrib.auth.middleware.AuthenticationMiddleware") + 1,
    "simple_history.middleware.HistoryRequestMiddleware",
)
SIMPLE_HISTORY_REVERT_DISABLED = True
