"""The column-wise validation's fast paths agree with the exact, item-by-item ones."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from fleet.telemetry.validation import ONE_MICROSECOND, UNIX_EPOCH, validate_readings

NOW = dt.datetime(2101, 1, 1, tzinfo=dt.UTC)
offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(lambda m: dt.timezone(dt.timedelta(minutes=m)))
moments = st.datetimes(min_value=dt.datetime(2000, 1, 2), max_value=dt.datetime(2100, 12, 30), timezones=offsets)


@settings(max_examples=300, deadline=None)
@given(st.lists(moments, min_size=1, max_size=50))
def test_timestamps_are_exact_to_the_microsecond(values):
    columns = validate_readings([{"recorded_at": m.isoformat(), "soc_pct": 50} for m in values], now=NOW)

    assert not columns.errors
    assert columns.recorded_at_us.tolist() == [(m - UNIX_EPOCH) // ONE_MICROSECOND for m in values]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {"recorded_at": st.just("2026-01-01T00:00:00Z")},
            optional={
                "soc_pct": st.one_of(st.none(), st.floats(allow_nan=True), st.integers(), st.booleans(), st.text()),
                "speed_kmh": st.one_of(st.none(), st.floats(-10, 400)),
            },
        ),
        min_size=1,
        max_size=20,
    )
)
def test_a_batch_never_raises_and_every_bad_value_is_named(items):
    columns = validate_readings(items, now=NOW)

    for index, item in enumerate(items):
        soc = item.get("soc_pct")
        good_soc = soc is None or (type(soc) in (int, float) and 0 <= soc <= 100)
        speed = item.get("speed_kmh")
        good_speed = speed is None or 0 <= speed <= 300
        says_nothing = soc is None and speed is None  # a reading without any measurement is rejected too
        assert (index in columns.errors) == (not (good_soc and good_speed) or says_nothing), item
