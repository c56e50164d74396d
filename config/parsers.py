"""The API's JSON parser: DRF's, plus a 400 for nesting too deep to parse (instead of a RecursionError 500)."""

from __future__ import annotations

from rest_framework import exceptions, parsers


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise exceptions.ParseError("JSON parse error - the document is nested too deeply.") from exc
