import pytest
from django.core.exceptions import ValidationError

from fleet.vin import validate_vin, vin_check_digit
from tests.factories import make_vin


@pytest.mark.parametrize(
    "vin",
    [
        "1M8GDM9AXKP042788",  # the textbook example from 49 CFR 565: check digit X
        "11111111111111111",  # all ones: check digit 1
        "3MTBE12A4P0000001".replace("4", vin_check_digit("3MTBE12A0P0000001"), 1),
        "LA9C4ARY9GBXGK001",  # Chinese WMI: no check digit is enforced outside North America
        "1m8gdm9axkp042788",  # lower case is normalised
    ],
)
def test_valid_vins_pass(vin):
    validate_vin(vin)


@pytest.mark.parametrize(
    ("vin", "code"),
    [
        ("1M8GDM9A1KP042788", "vin_check_digit"),  # one digit off: 1 instead of X
        ("11111111211111111", "vin_check_digit"),
        ("1M8GDM9AXKP04278", "vin_length"),
        ("1M8GDM9AXKP0427888", "vin_length"),
        ("1M8GDM9AXKP04278O", "vin_characters"),  # letter O
        ("IM8GDM9AXKP042788", "vin_characters"),  # letter I
        ("1M8GDM9AXKP04278Q", "vin_characters"),
        ("1M8GDM9AXKP04278-", "vin_characters"),
    ],
)
def test_invalid_vins_are_rejected_with_a_reason(vin, code):
    with pytest.raises(ValidationError) as excinfo:
        validate_vin(vin)
    assert excinfo.value.code == code


def test_factory_vins_are_valid():
    for serial in range(200):
        validate_vin(make_vin(serial))
