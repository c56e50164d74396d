# One date format per language, used by every page (Django's own English mixes "m/d/Y" and "N j, Y, P").
# Times are 24-hour everywhere: a plan's slots and a night's hours read as on a depot's timetable.
DATE_FORMAT = "N j, Y"
SHORT_DATE_FORMAT = "m/d/Y"
TIME_FORMAT = "H:i"
DATETIME_FORMAT = "N j, Y, H:i"
SHORT_DATETIME_FORMAT = "m/d/Y H:i"
