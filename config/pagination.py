"""The API's pagination: DRF's limit/offset, except that a malformed ``limit`` or ``offset`` is a 400.

DRF silently falls back to the defaults (``?limit=abc`` answers page one), so a client's bug looks like
missing data. The schema documents both as integers; the answer now agrees with it.
"""

from __future__ import annotations

from rest_framework import pagination, serializers


class LimitOffsetPagination(pagination.LimitOffsetPagination):
    max_limit = 1000

    @staticmethod
    def _integer_param(request, name: str, *, minimum: int) -> int | None:
        raw = request.query_params.get(name)
        if raw is None:
            return None
        try:
            value = int(raw)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise serializers.ValidationError({name: [f"Give an integer of at least {minimum}."]})
        return value

    def get_limit(self, request):
        limit = self._integer_param(request, self.limit_query_param, minimum=1)
        return self.default_limit if limit is None else min(limit, self.max_limit)

    def get_offset(self, request):
        return self._integer_param(request, self.offset_query_param, minimum=0) or 0
