"""Numbers, dates, times and plurals as a Dutch (or English) reader expects them, through Babel.

One definition for every page, reason line, CSV and message: "6,4", "3 dec. 2026",
"3 dec. 2026 om 20:15" in the reader's own time zone (never raw UTC), "1 dag" / "2 dagen".
Halves round up (4,25 -> 4,3), as the instruments' manuals, SPSS and Excel do.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime, tzinfo
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from zoneinfo import ZoneInfo

from babel import Locale
from babel.core import get_global
from babel.dates import format_date, format_time, get_month_names, get_timezone_location
from babel.numbers import format_decimal

DEFAULT_LOCALE = "nl"
CLINIC_ZONE = "Europe/Amsterdam"


def _locale(language: str | None) -> str:
    return "en" if language == "en" else DEFAULT_LOCALE


def round_half_up(value: float, decimals: int) -> float:
    """`value` to `decimals` places, halves away from zero (4.25 -> 4.3), as the instruments'
    manuals, SPSS and Excel's ROUND do; Python's round() goes to even (4.2). The float's
    shortest text is what is rounded, so a mean that prints as 2.675 becomes 2.68."""
    quantum = Decimal(1).scaleb(-decimals)
    return float(Decimal(repr(value)).quantize(quantum, rounding=ROUND_HALF_UP))


def number(value: float, decimals: int = 1, language: str | None = None) -> str:
    """6.45 -> "6,5" (nl) / "6.5" (en); whole numbers of 10 and more without a decimal place."""
    if float(value).is_integer() and decimals <= 1 and abs(value) >= 10:
        decimals = 0
    return _decimal(round_half_up(float(value), decimals), decimals, _locale(language))


def setting(value: float, language: str | None = None) -> str:
    """A value as it was set, with the decimals it needs (at most 2): 3 -> "3", 2.6 -> "2,6"."""
    decimals = next(d for d in (0, 1, 2) if round(value, d) == value or d == 2)
    return _decimal(round_half_up(float(value), decimals), decimals, _locale(language))


@lru_cache(maxsize=4096)
def _decimal(rounded: float, decimals: int, locale: str) -> str:
    # Cached: a reason line on the write path formats a handful of pain levels (0,0-10,0),
    # and Babel takes ~20 us a number.
    pattern = "#,##0" + ("." + "0" * decimals if decimals else "")
    return format_decimal(rounded, pattern, locale=locale)


def percent(share: float, language: str | None = None) -> str:
    """0.64 -> "64 %" (nl) / "64%" (en), whole percents."""
    whole = number(share * 100, 0, language)
    return f"{whole} %" if _locale(language) == "nl" else f"{whole}%"


@lru_cache(maxsize=8)
def _months(locale: str) -> tuple[dict[int, str], dict[int, str]]:
    return (
        dict(get_month_names("abbreviated", locale=locale)),
        dict(get_month_names("wide", locale=locale)),
    )


def _month(d: date, locale: str) -> str:
    short, wide = _months(locale)
    name = short[d.month]
    # Dutch writes an abbreviation with a full stop ("dec.", "mrt."), not "mei" or "juni".
    if locale == "nl" and name != wide[d.month] and not name.endswith("."):
        name += "."
    return name


def day(d: date, language: str | None = None, *, year: bool = True) -> str:
    """ "3 dec. 2026" (nl) / "3 Dec 2026" (en); `year=False`: "3 dec."."""
    locale = _locale(language)
    text = f"{d.day} {_month(d, locale)}"
    return f"{text} {d.year}" if year else text


def zone(name: str | None) -> tzinfo:
    """The named IANA zone, the clinic's own when none (or an unknown one) is given; a folder of
    the zone database ("Europe") raises OSError."""
    try:
        return ZoneInfo(name or CLINIC_ZONE)
    except (KeyError, ValueError, OSError):
        return ZoneInfo(CLINIC_ZONE)


def today(zone_name: str | None = None) -> date:
    """Today in the named zone (the clinic's when none): after midnight in Amsterdam the UTC
    date is still yesterday."""
    return datetime.now(zone(zone_name)).date()


@lru_cache(maxsize=1024)
def zone_place(name: str, language: str | None = None) -> str:
    """A time zone as a person names it, through Babel's CLDR names: "Amsterdam (Nederland)",
    "Canarische Eilanden (Spanje)", "Curaçao"; the IANA name when CLDR has no city for it."""
    locale = Locale.parse(_locale(language))
    try:
        city = get_timezone_location(name, locale=locale, return_city=True)
    except LookupError:
        return name.replace("_", " ")
    territory = get_global("zone_territories").get(name, "")
    country = locale.territories.get(territory, "") if territory.isalpha() else ""
    return f"{city} ({country})" if country and country != city else city


def zone_is_canonical(name: str) -> bool:
    """A zone CLDR names as it is (not an old alias such as Europe/Kiev or America/Montreal,
    which would list "Kiev" or "Toronto" twice)."""
    return name in get_global("zone_territories")


def moment(at: datetime, time_zone: str | None = None, language: str | None = None) -> str:
    """An instant in the reader's local time: "3 dec. 2026 om 20:15" / "3 Dec 2026 at 20:15".

    `at` must be aware (UTC from the database); `time_zone` is the patient's or the clinic's.
    """
    local = at.astimezone(zone(time_zone))
    locale = _locale(language)
    clock = format_time(local, "HH:mm", locale=locale)
    return f"{day(local.date(), language)} {'om' if locale == 'nl' else 'at'} {clock}"


def weekday(d: date, language: str | None = None) -> str:
    """ "donderdag 3 dec. 2026"."""
    locale = _locale(language)
    return f"{format_date(d, 'EEEE', locale=locale)} {day(d, language)}"


def plural(count: int, one: str, other: str, language: str | None = None) -> str:
    """`count` with the right noun form by the language's plural rule: "1 dag", "2 dagen".

    `one` and `other` are the forms ("dag", "dagen"); the number is formatted too.
    """
    form = Locale.parse(_locale(language)).plural_form(abs(count))
    return f"{number(count, 0, language)} {one if form == 'one' else other}"


def days(count: int, language: str | None = None) -> str:
    """ "1 dag" / "3 dagen" (nl), "1 day" / "3 days" (en)."""
    if _locale(language) == "en":
        return plural(count, "day", "days", "en")
    return plural(count, "dag", "dagen", "nl")


# -- names in a list ------------------------------------------------------------------------
_TITLES = frozenset(
    [
        "dhr",
        "dhr.",
        "mevr",
        "mevr.",
        "mw",
        "mw.",
        "mevrouw",
        "meneer",
        "heer",
        "mr",
        "mr.",
        "mrs",
        "mrs.",
        "ms",
        "ms.",
        "dr",
        "dr.",
        "drs",
        "drs.",
        "ir",
        "ir.",
        "ing",
        "ing.",
        "prof",
        "prof.",
        "mej",
        "mej.",
        "fam",
        "fam.",
    ]
)
_PARTICLES = frozenset(
    [
        "de",
        "den",
        "der",
        "van",
        "von",
        "ter",
        "ten",
        "te",
        "het",
        "'t",
        "in",
        "op",
        "d'",
        "la",
        "le",
        "du",
        "da",
        "di",
        "del",
        "des",
        "vd",
        "v.d.",
    ]
)
_NUMBER = re.compile(r"\d+")
_INITIALS = re.compile(r"(\w\.)+")


def name_sort_key(name: str) -> str:
    """The key a display name sorts by, as a Dutch team reads a list: titles (Dhr., Mevr.) and
    the lower-case particles of a surname (de, van der, ten) do not count, so "Mevr. de Boer"
    stands under B; numbers count by value, so "Extra 7" comes before "Extra 69"."""
    plain = "".join(c for c in unicodedata.normalize("NFKD", name.casefold()) if not unicodedata.combining(c))
    words = plain.split()
    while len(words) > 1 and words[0] in _TITLES:
        words = words[1:]
    while len(words) > 1 and _INITIALS.fullmatch(words[0]):
        words = words[1:]
    while len(words) > 1 and words[0] in _PARTICLES:
        words = words[1:]
    core = " ".join(words)
    # Numbers by value: padded to 12 digits ("7" -> "000000000007" sorts before "69").
    padded = _NUMBER.sub(lambda m: m.group().zfill(12), core)
    return f"{padded}\x00{plain}"
