from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from config import errors, throttling

api_v1: list[URLPattern | URLResolver] = [
    path("auth/token/", throttling.obtain_auth_token, name="api-token"),
    path("", include("fleet.urls")),
    path("", include("batteries.urls")),
    path("", include("charging.urls")),
    path("", include("csms.urls")),
    path("", include("timetable.urls")),
    path("", include("citydata.urls")),
    path("", include("fleet.telemetry.urls")),
]

urlpatterns = [
    path("admin/login/", throttling.admin_login),  # admin.site.login, throttled; before the admin's own route
    path("admin/", admin.site.urls),
    path("api/", errors.api_root, name="api-root"),
    path("api/v1/", include((api_v1, "api"), namespace="v1")),
    path("api/v1/", include("config.api_root")),  # GET /api/v1/: the areas and their endpoints
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="api-redoc"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("ngsi-ld/", include("citydata.ngsi_urls")),
]

# Errors no view answered: JSON on /api/, Django's pages elsewhere; a database outage is a 503 (config/errors.py).
handler400 = "config.errors.bad_request"
handler403 = "config.errors.permission_denied"
handler404 = "config.errors.page_not_found"
handler500 = "config.errors.server_error"
