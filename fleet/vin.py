"""Vehicle Identification Number validation (ISO 3779, check digit per 49 CFR 565 for North America)."""

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

VIN_LENGTH = 17
# I, O and Q are never used: they read like 1 and 0.
_TRANSLITERATION = {
    **{str(d): d for d in range(10)},
    **dict(zip("ABCDEFGH", range(1, 9), strict=True)),
    **dict(zip("JKLMN", range(1, 6), strict=True)),
    "P": 7,
    "R": 9,
    **dict(zip("STUVWXYZ", range(2, 10), strict=True)),
}
_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
# World manufacturer identifiers starting 1-5 are North American (US, Canada, Mexico): the check digit
# in position 9 is mandatory there. Elsewhere it is optional, so we do not enforce it.
_NORTH_AMERICAN_REGIONS = frozenset("12345")


def vin_check_digit(vin: str) -> str:
    """The check digit ('0'-'9' or 'X') that position 9 of a 17-character VIN must hold."""
    total = sum(_TRANSLITERATION[ch] * weight for ch, weight in zip(vin, _WEIGHTS, strict=True))
    remainder = total % 11
    return "X" if remainder == 10 else str(remainder)


def normalize_vin(vin: str) -> str:
    return vin.strip().upper()


def validate_vin(value: str) -> None:
    vin = normalize_vin(value)
    if len(vin) != VIN_LENGTH:
        raise ValidationError(
            _("A VIN has 17 characters; this one has %(n)d."), code="vin_length", params={"n": len(vin)}
        )
    bad = sorted({ch for ch in vin if ch not in _TRANSLITERATION})
    if bad:
        raise ValidationError(
            _("A VIN uses digits and letters except I, O and Q; found %(chars)s."),
            code="vin_characters",
            params={"chars": ", ".join(bad)},
        )
    if vin[0] in _NORTH_AMERICAN_REGIONS:
        expected = vin_check_digit(vin)
        if vin[8] != expected:
            raise ValidationError(
                _("The VIN's check digit (position 9) is %(found)s but should be %(expected)s: check for a typo."),
                code="vin_check_digit",
                params={"found": vin[8], "expected": expected},
            )
