"""The fleet registry's REST API: serializers in ``serializers``, viewsets in ``views``, routes in fleet.urls."""
