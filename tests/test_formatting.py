"""Dutch numbers, dates and plurals as the clinic reads them (backend/platform/formatting.py)."""

from datetime import UTC, date, datetime

from backend.platform import formatting as f


def test_numbers_have_a_decimal_comma_and_halves_round_up():
    assert f.number(4.8) == "4,8"
    assert f.number(6.45) == "6,5"  # Babel alone would round to even: 6,4
    assert f.number(4.25) == "4,3"
    assert f.number(1234.5) == "1.234,5"
    assert f.number(10.0) == "10"
    assert f.number(7.0) == "7,0"
    assert f.number(4.8, language="en") == "4.8"
    assert f.percent(0.643) == "64 %"


def test_dates_are_dutch_with_the_abbreviation_stop():
    assert f.day(date(2026, 12, 3)) == "3 dec. 2026"
    assert f.day(date(2026, 5, 3)) == "3 mei 2026"
    assert f.day(date(2026, 3, 9), year=False) == "9 mrt."
    assert f.day(date(2026, 12, 3), "en") == "3 Dec 2026"
    assert f.weekday(date(2026, 12, 3)) == "donderdag 3 dec. 2026"


def test_an_instant_is_shown_in_local_time_never_raw_utc():
    at = datetime(2026, 12, 1, 22, 51, 27, tzinfo=UTC)
    assert f.moment(at) == "1 dec. 2026 om 23:51"  # Amsterdam, winter: UTC+1
    assert f.moment(datetime(2026, 7, 1, 18, 15, tzinfo=UTC)) == "1 jul. 2026 om 20:15"  # summer: UTC+2
    assert f.moment(at, "Europe/London", "en") == "1 Dec 2026 at 22:51"
    assert f.moment(at, "Nowhere/Unknown") == "1 dec. 2026 om 23:51"


def test_plurals_follow_the_language_rule():
    assert f.days(1) == "1 dag"
    assert f.days(2) == "2 dagen"
    assert f.days(0) == "0 dagen"
    assert f.days(1, "en") == "1 day"
    assert f.plural(3, "melding", "meldingen") == "3 meldingen"


def test_a_time_zone_is_named_as_a_place():
    assert f.zone_place("Europe/Amsterdam") == "Amsterdam (Nederland)"
    assert f.zone_place("Atlantic/Canary") == "Canarische Eilanden (Spanje)"
    assert f.zone_place("America/Curacao") == "Curaçao"
    assert f.zone_place("Europe/London", "en") == "London (United Kingdom)"
    # No country for it in CLDR: the city alone, never "(onbekend gebied)".
    assert "(" not in f.zone_place("Antarctica/Troll")


def test_the_time_zone_list_names_each_place_once():
    """Old IANA aliases (Europe/Kiev, America/Montreal, Africa/Asmera) are left out: a nurse
    never meets "Toronto" three times or "Asmara" beside "Asmara (Eritrea)"."""
    from backend.web.patients import zone_choices

    for region, zones in zone_choices():
        places = [place for _, place in zones]
        assert len(places) == len(set(places)), region
    listed = {name for _, zones in zone_choices() for name, _ in zones}
    assert {"Europe/Kyiv", "America/Toronto", "Africa/Asmara"} <= listed
    assert not {"Europe/Kiev", "America/Montreal", "Africa/Asmera"} & listed
