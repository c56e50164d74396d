"""The test climates, one home: monthly mean air temperatures (°C, January..December) of the Sonoran towns the
tests forecast in, as the forecast core's ``Climate`` and as the 12 numbers a depot stores
(``Depot.monthly_mean_temperature_c``).

Django-free (the forecast core's tests run without Django). These are the tests' own numbers: the forecasting
service's default climate (``batteries.forecast_service.DEFAULT_CLIMATE_C``) happens to equal Hermosillo's, but a
test that uses these does not follow a change of that default.
"""

from __future__ import annotations

import os

os.environ.setdefault("PYBAMM_DISABLE_TELEMETRY", "true")

from batteries.forecast import Climate  # noqa: E402

#: Hermosillo, hot desert: 17 °C in January, 32 °C from June to August.
HERMOSILLO_C = (17, 19, 22, 25, 29, 32, 32, 32, 31, 27, 21, 17)
#: Nogales, 1,200 m up on the border: the coldest of the demo's towns.
NOGALES_C = (9, 11, 14, 17, 21, 26, 26, 25, 23, 18, 13, 9)

HERMOSILLO = Climate(HERMOSILLO_C)
NOGALES = Climate(NOGALES_C)
