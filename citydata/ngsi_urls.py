"""NGSI-LD routes at the root of the site (config/urls.py: ``path("ngsi-ld/", include("citydata.ngsi_urls"))``)."""

from django.urls import path

from citydata import ngsi_api

urlpatterns = [
    path("v1/entities", ngsi_api.EntityListView.as_view(), name="ngsi-ld-entities"),
    path("v1/entities/<str:entity_id>", ngsi_api.EntityDetailView.as_view(), name="ngsi-ld-entity"),
    path("contexts/evfleet.jsonld", ngsi_api.context_document, name="ngsi-ld-context"),
]
