"""SLA due dates: worked examples at a Paris and a Newark centre, properties over 2024-2030,
and the ON_TIME / AT_RISK / LATE table. Expected values are worked out by hand from a calendar."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import given, reject, settings
from hypothesis import strategies as st

from issuance.domain.centres import PersonalizationCentre, Weekday
from issuance.domain.programs import DEFAULT_SLA, IssuanceType, ShipmentType, SlaRule
from issuance.domain.sla import (
    DEFAULT_AT_RISK_FRACTION,
    SlaStanding,
    add_working_days,
    due_date,
    is_working_day,
    matching_rule,
    production_day,
    public_holidays,
    standing,
)

PARIS_TZ = ZoneInfo("Europe/Paris")
NEW_YORK_TZ = ZoneInfo("America/New_York")

PARIS = PersonalizationCentre(
    centre_id="PAR-1",
    name="Paris",
    time_zone="Europe/Paris",
    cut_off=time(15, 0),
    pickup_time=time(17, 0),
    holiday_country="FR",
)
NEWARK = PersonalizationCentre(
    centre_id="EWR-1",
    name="Newark",
    time_zone="America/New_York",
    cut_off=time(14, 0),
    pickup_time=time(17, 0),
    holiday_country="US",
    holiday_subdivision="NJ",
)
MON_TO_SAT = (*PARIS.working_days, Weekday.SAT)
EVERY_DAY = tuple(Weekday)

CREATION = IssuanceType.CREATION
RENEWAL = IssuanceType.RENEWAL
REPLACEMENT = IssuanceType.REPLACEMENT


def paris(moment: str) -> datetime:
    """'2026-03-10 10:00' on the Paris wall clock."""
    return datetime.fromisoformat(moment).replace(tzinfo=PARIS_TZ)


def new_york(moment: str) -> datetime:
    return datetime.fromisoformat(moment).replace(tzinfo=NEW_YORK_TZ)


def utc(moment: str) -> datetime:
    return datetime.fromisoformat(moment).replace(tzinfo=UTC)


def centre(base: PersonalizationCentre, **changes: object) -> PersonalizationCentre:
    """A variant of a centre, validated like configuration is."""
    return PersonalizationCentre.model_validate({**base.model_dump(), **changes})


# March 2026: Mon 9, Tue 10, Wed 11, Thu 12, Fri 13, Sat 14, Mon 16, Tue 17. No FR/US holiday.
# Times are on the centre's wall clock. One row a line, so the table reads as a table.
# fmt: off
WORKED_EXAMPLES = {
    # id: (centre, received, issuance, priority, due)
    "creation-tuesday-morning": (PARIS, "2026-03-10 10:00", CREATION, "STANDARD", "2026-03-11 17:00"),
    "at-cut-off-is-not-after-it": (PARIS, "2026-03-10 15:00:00", CREATION, None, "2026-03-11 17:00"),
    "one-second-after-cut-off": (PARIS, "2026-03-10 15:00:01", CREATION, None, "2026-03-12 17:00"),
    "friday-late-d-saturday-is-monday": (PARIS, "2026-03-13 16:00", CREATION, None, "2026-03-17 17:00"),
    "saturday-produced-from-monday": (PARIS, "2026-03-14 10:00", REPLACEMENT, None, "2026-03-17 17:00"),
    "renewal-ten-working-days": (PARIS, "2026-03-09 09:00", RENEWAL, "STANDARD", "2026-03-23 17:00"),
    "urgent-before-noon-four-hours": (PARIS, "2026-03-10 10:00", CREATION, "URGENT", "2026-03-10 14:00"),
    "urgent-for-any-issuance": (PARIS, "2026-03-10 11:59:59", RENEWAL, "URGENT", "2026-03-10 15:59:59"),
    "urgent-at-noon-falls-back": (PARIS, "2026-03-10 12:00", CREATION, "URGENT", "2026-03-11 17:00"),
    "urgent-afternoon-creation": (PARIS, "2026-03-10 13:00", CREATION, "URGENT", "2026-03-11 17:00"),
    "urgent-afternoon-renewal": (PARIS, "2026-03-10 13:00", RENEWAL, "URGENT", "2026-03-24 17:00"),
    "urgent-saturday-falls-back": (PARIS, "2026-03-14 10:00", CREATION, "URGENT", "2026-03-17 17:00"),
    "urgent-on-bastille-day": (PARIS, "2026-07-14 10:00", CREATION, "URGENT", "2026-07-16 17:00"),
    "christmas-eve-skips-christmas": (PARIS, "2026-12-24 10:00", CREATION, None, "2026-12-28 17:00"),
    "new-years-eve-late": (PARIS, "2026-12-31 16:00", REPLACEMENT, None, "2027-01-05 17:00"),
    "newark-creation-tuesday": (NEWARK, "2026-03-10 10:00", CREATION, None, "2026-03-11 17:00"),
    "newark-own-cut-off": (NEWARK, "2026-03-10 14:00:01", CREATION, None, "2026-03-12 17:00"),
    "newark-lincolns-birthday-nj": (NEWARK, "2026-02-11 10:00", CREATION, None, "2026-02-13 17:00"),
    "newark-observed-july-4th": (NEWARK, "2026-07-02 08:00", CREATION, None, "2026-07-06 17:00"),
    "newark-urgent": (NEWARK, "2026-03-10 11:30", CREATION, "URGENT", "2026-03-10 15:30"),
}
# fmt: on


@pytest.mark.parametrize(
    ("site", "received", "issuance", "priority", "expected"),
    list(WORKED_EXAMPLES.values()),
    ids=list(WORKED_EXAMPLES),
)
def test_worked_examples(
    site: PersonalizationCentre,
    received: str,
    issuance: IssuanceType,
    priority: str | None,
    expected: str,
) -> None:
    zone = ZoneInfo(site.time_zone)
    local = datetime.fromisoformat(received).replace(tzinfo=zone)

    due = due_date(local, centre=site, rules=DEFAULT_SLA, issuance=issuance, priority=priority)

    assert due == datetime.fromisoformat(expected).replace(tzinfo=zone)
    assert due.tzinfo is UTC


@pytest.mark.parametrize(
    ("site", "received", "expected_utc"),
    [
        # Paris goes to summer time on Sunday 2026-03-29: Friday 10:00 is 09:00Z, pickup 15:00Z.
        (PARIS, paris("2026-03-27 10:00"), "2026-03-30 15:00"),
        # ... and back on Sunday 2026-10-25: pickup on Monday is 16:00Z again.
        (PARIS, paris("2026-10-23 10:00"), "2026-10-26 16:00"),
        # New York: summer time from Sunday 2026-03-08 (17:00 EDT = 21:00Z) ...
        (NEWARK, new_york("2026-03-06 10:00"), "2026-03-09 21:00"),
        # ... until Sunday 2026-11-01 (17:00 EST = 22:00Z).
        (NEWARK, new_york("2026-10-30 10:00"), "2026-11-02 22:00"),
    ],
)
def test_pickup_is_local_wall_clock_across_dst_changes(
    site: PersonalizationCentre, received: datetime, expected_utc: str
) -> None:
    due = due_date(received, centre=site, rules=DEFAULT_SLA, issuance=CREATION, priority=None)

    assert due == utc(expected_utc)


def test_an_hours_rule_counts_elapsed_hours_across_a_dst_change() -> None:
    # A seven-day centre: at 02:00 on 2026-03-29 Paris clocks jump to 03:00.
    always_open = centre(PARIS, working_days=EVERY_DAY)
    received = paris("2026-03-29 01:30")  # 00:30Z

    due = due_date(
        received, centre=always_open, rules=DEFAULT_SLA, issuance=CREATION, priority="URGENT"
    )

    assert due == utc("2026-03-29 04:30")
    assert due.astimezone(PARIS_TZ).time() == time(6, 30)  # five wall-clock hours, four real


def test_the_local_date_decides_not_the_utc_date() -> None:
    # Saturday 02:00Z is Friday 22:00 in Newark: with a 23:00 cut-off, D is Friday.
    late_newark = centre(NEWARK, cut_off=time(23, 0), pickup_time=time(23, 30))
    received = utc("2026-03-14 02:00")

    assert production_day(received, centre=late_newark) == date(2026, 3, 13)
    due = due_date(
        received, centre=late_newark, rules=DEFAULT_SLA, issuance=CREATION, priority=None
    )
    assert due == new_york("2026-03-16 23:30")  # Monday; the UTC date would give Tuesday


def test_the_urgent_noon_is_local_noon() -> None:
    # 15:30Z is after noon in UTC, but 11:30 in Newark (EDT): four hours apply.
    received = utc("2026-03-10 15:30")

    due = due_date(received, centre=NEWARK, rules=DEFAULT_SLA, issuance=CREATION, priority="URGENT")

    assert due == utc("2026-03-10 19:30")


def test_the_cut_off_is_compared_on_the_local_clock() -> None:
    # 18:30Z is past 14:00 in UTC, but 13:30 in Newark (EST, before the DST switch).
    received = utc("2026-03-03 18:30")

    assert production_day(received, centre=NEWARK) == date(2026, 3, 3)


RENEWAL_5_ELSE_1 = (SlaRule(issuance=RENEWAL, working_days=5), SlaRule(working_days=1))
ONLY_CREATION_3 = (SlaRule(issuance=CREATION, working_days=3),)
FIRST_MATCH_WINS = (SlaRule(working_days=3), SlaRule(issuance=CREATION, working_days=1))
EXPRESS_SAME_DAY = (SlaRule(priority="EXPRESS", working_days=0),)
URGENT_2H_ELSE_2 = (SlaRule(priority="URGENT", hours=2), SlaRule(working_days=2))
REPLACEMENT_24H = (SlaRule(issuance=REPLACEMENT, hours=24),)

# fmt: off
CUSTOM_RULES = {
    # id: (rules, received in Paris, issuance, priority, due in Paris)
    "renewal-5": (RENEWAL_5_ELSE_1, "2026-03-09 09:00", RENEWAL, None, "2026-03-16 17:00"),
    "catch-all-1": (RENEWAL_5_ELSE_1, "2026-03-09 09:00", CREATION, None, "2026-03-10 17:00"),
    "no-urgent-rule-no-hours": (RENEWAL_5_ELSE_1, "2026-03-09 09:00", REPLACEMENT, "URGENT", "2026-03-10 17:00"),
    "no-rules-d-plus-1": ((), "2026-03-09 09:00", RENEWAL, None, "2026-03-10 17:00"),
    "no-match-d-plus-1": (ONLY_CREATION_3, "2026-03-09 09:00", RENEWAL, None, "2026-03-10 17:00"),
    "first-match-wins": (FIRST_MATCH_WINS, "2026-03-09 09:00", CREATION, None, "2026-03-12 17:00"),
    "d-plus-0-pickup-on-d": (EXPRESS_SAME_DAY, "2026-03-10 10:00", CREATION, "EXPRESS", "2026-03-10 17:00"),
    "d-plus-0-after-cut-off": (EXPRESS_SAME_DAY, "2026-03-10 16:00", CREATION, "EXPRESS", "2026-03-11 17:00"),
    "priority-rule-needs-it": (EXPRESS_SAME_DAY, "2026-03-10 10:00", CREATION, None, "2026-03-11 17:00"),
    "hours-up-to-cut-off": (URGENT_2H_ELSE_2, "2026-03-10 15:00", CREATION, "URGENT", "2026-03-10 17:00"),
    "hours-never-after-cut-off": (URGENT_2H_ELSE_2, "2026-03-10 15:00:01", CREATION, "URGENT", "2026-03-13 17:00"),
    "hours-by-issuance": (REPLACEMENT_24H, "2026-03-10 14:15", REPLACEMENT, None, "2026-03-11 14:15"),
}
# fmt: on


@pytest.mark.parametrize(
    ("rules", "received", "issuance", "priority", "expected"),
    list(CUSTOM_RULES.values()),
    ids=list(CUSTOM_RULES),
)
def test_program_rules(
    rules: tuple[SlaRule, ...],
    received: str,
    issuance: IssuanceType,
    priority: str | None,
    expected: str,
) -> None:
    due = due_date(paris(received), centre=PARIS, rules=rules, issuance=issuance, priority=priority)

    assert due == paris(expected)


@pytest.mark.parametrize(
    ("received", "priority", "expected"),
    [
        ("2026-03-10 10:00", None, "2026-03-12 17:00"),  # D+1 skips the closed Wednesday
        ("2026-03-11 10:00", None, "2026-03-13 17:00"),  # received on it: D is Thursday
        ("2026-03-11 10:00", "URGENT", "2026-03-13 17:00"),  # no hours on a closed day
        ("2026-03-12 10:00", "URGENT", "2026-03-12 14:00"),  # open again
    ],
)
def test_closed_dates_are_not_working_days(
    received: str, priority: str | None, expected: str
) -> None:
    stocktake = centre(PARIS, closed_dates=(date(2026, 3, 11),))

    due = due_date(
        paris(received), centre=stocktake, rules=DEFAULT_SLA, issuance=CREATION, priority=priority
    )

    assert due == paris(expected)


def test_a_saturday_working_centre_produces_on_saturday() -> None:
    six_days = centre(PARIS, working_days=MON_TO_SAT)

    # Friday after cut-off: D is Saturday, D+1 skips Sunday.
    due = due_date(
        paris("2026-03-13 16:00"),
        centre=six_days,
        rules=DEFAULT_SLA,
        issuance=CREATION,
        priority=None,
    )

    assert due == paris("2026-03-16 17:00")


@pytest.mark.parametrize(
    ("site", "day", "working"),
    [
        (PARIS, date(2026, 3, 10), True),
        (PARIS, date(2026, 3, 14), False),  # Saturday
        (PARIS, date(2026, 3, 15), False),  # Sunday
        (PARIS, date(2026, 7, 14), False),  # Fête nationale
        (PARIS, date(2026, 5, 14), False),  # Ascension, a moving feast
        (PARIS, date(2026, 2, 12), True),
        (NEWARK, date(2026, 2, 12), False),  # Lincoln's Birthday: New Jersey, not federal
        (centre(NEWARK, holiday_subdivision=None), date(2026, 2, 12), True),
        (NEWARK, date(2026, 11, 26), False),  # Thanksgiving
        (NEWARK, date(2026, 7, 14), True),
        (centre(PARIS, holiday_country=None), date(2026, 12, 25), True),
        (centre(PARIS, working_days=MON_TO_SAT), date(2026, 3, 14), True),
        (centre(PARIS, working_days=MON_TO_SAT), date(2026, 12, 26), True),  # not a FR holiday
        (centre(PARIS, closed_dates=(date(2026, 3, 10),)), date(2026, 3, 10), False),
    ],
)
def test_is_working_day(site: PersonalizationCentre, day: date, working: bool) -> None:
    assert is_working_day(day, centre=site) is working


@pytest.mark.parametrize(
    ("received", "expected"),
    [
        (paris("2026-03-10 00:00"), date(2026, 3, 10)),
        (paris("2026-03-10 15:00"), date(2026, 3, 10)),
        (paris("2026-03-10 15:00:00.000001"), date(2026, 3, 11)),
        (paris("2026-03-13 15:30"), date(2026, 3, 16)),
        (paris("2026-12-31 16:00"), date(2027, 1, 4)),  # Fri 1 Jan holiday, then the weekend
        (utc("2026-03-09 23:30"), date(2026, 3, 10)),  # already Tuesday 00:30 in Paris
    ],
)
def test_production_day(received: datetime, expected: date) -> None:
    assert production_day(received, centre=PARIS) == expected


def test_add_working_days_zero_is_the_day_itself() -> None:
    assert add_working_days(date(2026, 3, 10), 0, centre=PARIS) == date(2026, 3, 10)
    assert add_working_days(date(2026, 3, 10), 4, centre=PARIS) == date(2026, 3, 16)


def test_a_naive_datetime_is_refused() -> None:
    naive = datetime(2026, 3, 10, 10, 0)

    with pytest.raises(ValueError, match="timezone-aware"):
        due_date(naive, centre=PARIS, rules=DEFAULT_SLA, issuance=CREATION, priority=None)
    with pytest.raises(ValueError, match="timezone-aware"):
        production_day(naive, centre=PARIS)


def test_issuance_may_be_a_string_but_must_be_a_d1_one() -> None:
    received = paris("2026-03-09 09:00")
    by_enum = due_date(received, centre=PARIS, rules=DEFAULT_SLA, issuance=RENEWAL, priority=None)

    assert (
        due_date(received, centre=PARIS, rules=DEFAULT_SLA, issuance="RENEWAL", priority=None)
        == by_enum
    )
    with pytest.raises(ValueError, match="REISSUE"):
        due_date(received, centre=PARIS, rules=DEFAULT_SLA, issuance="REISSUE", priority=None)


@pytest.mark.parametrize("shipment_type", [None, *ShipmentType])
def test_shipment_type_is_accepted_and_changes_nothing_yet(
    shipment_type: ShipmentType | None,
) -> None:
    due = due_date(
        paris("2026-03-10 10:00"),
        centre=PARIS,
        rules=DEFAULT_SLA,
        issuance=CREATION,
        priority=None,
        shipment_type=shipment_type,
    )

    assert due == paris("2026-03-11 17:00")


def test_a_centre_that_never_works_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="at least 1 item"):
        centre(PARIS, working_days=())


def test_a_centre_closed_for_more_than_a_year_is_refused_at_calculation() -> None:
    closed = tuple(date(2026, 3, 1) + timedelta(days=n) for n in range(400))
    never = centre(PARIS, closed_dates=closed)

    with pytest.raises(ValueError, match="no working day"):
        production_day(paris("2026-03-10 10:00"), centre=never)


def test_holiday_calendars_are_built_once_per_country_subdivision_and_year() -> None:
    public_holidays("US", "NJ", 2029)
    before = public_holidays.cache_info()

    is_working_day(date(2029, 2, 12), centre=NEWARK)
    is_working_day(date(2029, 7, 4), centre=NEWARK)

    after = public_holidays.cache_info()
    assert after.hits - before.hits == 2
    assert after.misses == before.misses
    assert public_holidays(None, "NJ", 2029) == frozenset()


# --- Properties -----------------------------------------------------------------------------

# No example database: unit tests write nothing outside their temporary directories.
quick = settings(database=None, max_examples=200, deadline=None)

TOKYO = PersonalizationCentre(
    centre_id="TYO-1",
    name="Tokyo",
    time_zone="Asia/Tokyo",
    cut_off=time(16, 30),
    pickup_time=time(18, 0),
    holiday_country="JP",
)
CENTRES = [
    PARIS,
    NEWARK,
    TOKYO,
    centre(PARIS, working_days=MON_TO_SAT),
    centre(NEWARK, working_days=MON_TO_SAT),
    centre(
        PARIS,
        closed_dates=tuple(date(year, 12, day) for year in range(2024, 2031) for day in (24, 31)),
    ),
    centre(NEWARK, holiday_country=None, holiday_subdivision=None),
]
RULE_SETS = [
    DEFAULT_SLA,
    RENEWAL_5_ELSE_1,
    (),
    (SlaRule(priority="URGENT", hours=2), SlaRule(priority="EXPRESS", working_days=0)),
]

received_ats = st.datetimes(
    min_value=datetime(2024, 1, 1),
    max_value=datetime(2030, 12, 31, 23, 59, 59),
    timezones=st.sampled_from([UTC, PARIS_TZ, NEW_YORK_TZ, ZoneInfo("Asia/Kolkata")]),
    allow_imaginary=False,
)
centres = st.sampled_from(CENTRES)
issuances = st.sampled_from(IssuanceType)
priorities = st.sampled_from([None, "STANDARD", "URGENT", "EXPRESS"])
rule_sets = st.sampled_from(RULE_SETS)


@cache
def _calendar(country: str | None, subdivision: str | None) -> holidays.HolidayBase | None:
    """The package's own lazily growing calendar (it adds a year on first lookup in it)."""
    return holidays.country_holidays(country, subdiv=subdivision) if country else None


def _is_open_by_the_book(day: date, site: PersonalizationCentre) -> bool:
    """Working-day oracle built straight from the configuration and the `holidays` package."""
    public = _calendar(site.holiday_country, site.holiday_subdivision)
    return (
        ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")[day.weekday()] in site.working_days
        and day not in site.closed_dates
        and (public is None or day not in public)
    )


@quick
@given(
    received=received_ats, site=centres, rules=rule_sets, issuance=issuances, priority=priorities
)
def test_the_due_date_is_after_receipt_and_in_utc(
    received: datetime,
    site: PersonalizationCentre,
    rules: tuple[SlaRule, ...],
    issuance: IssuanceType,
    priority: str | None,
) -> None:
    due = due_date(received, centre=site, rules=rules, issuance=issuance, priority=priority)

    assert due > received
    assert due.tzinfo is UTC


@quick
@given(
    received=received_ats, site=centres, rules=rule_sets, issuance=issuances, priority=priorities
)
def test_a_day_based_due_date_is_pickup_time_on_a_working_day(
    received: datetime,
    site: PersonalizationCentre,
    rules: tuple[SlaRule, ...],
    issuance: IssuanceType,
    priority: str | None,
) -> None:
    rule = matching_rule(received, centre=site, rules=rules, issuance=issuance, priority=priority)
    if rule is not None and rule.hours is not None:
        reject()  # hours rules: the property below

    due = due_date(received, centre=site, rules=rules, issuance=issuance, priority=priority)

    local_due = due.astimezone(ZoneInfo(site.time_zone))
    assert local_due.time() == site.pickup_time
    assert _is_open_by_the_book(local_due.date(), site)
    start = production_day(received, centre=site)
    days = 1 if rule is None else rule.working_days
    between = [start + timedelta(days=n) for n in range(1, (local_due.date() - start).days + 1)]
    assert sum(_is_open_by_the_book(day, site) for day in between) == days


@quick
@given(
    received=received_ats,
    site=centres,
    rules=st.sampled_from([DEFAULT_SLA, URGENT_2H_ELSE_2]),  # rule sets with an hours rule
    issuance=issuances,
    priority=st.just("URGENT"),
)
def test_an_hours_rule_is_exact_and_only_for_early_requests_on_working_days(
    received: datetime,
    site: PersonalizationCentre,
    rules: tuple[SlaRule, ...],
    issuance: IssuanceType,
    priority: str | None,
) -> None:
    rule = matching_rule(received, centre=site, rules=rules, issuance=issuance, priority=priority)
    if rule is None or rule.hours is None:
        reject()  # day-based: the property above

    due = due_date(received, centre=site, rules=rules, issuance=issuance, priority=priority)

    assert due - received == timedelta(hours=rule.hours)
    local = received.astimezone(ZoneInfo(site.time_zone))
    assert _is_open_by_the_book(local.date(), site)
    assert local.time() <= site.cut_off
    assert rule.before is None or local.time() < rule.before


@quick
@given(received=received_ats, site=centres)
def test_d_is_the_first_working_day_from_the_local_start_day(
    received: datetime, site: PersonalizationCentre
) -> None:
    local = received.astimezone(ZoneInfo(site.time_zone))
    first = local.date() + timedelta(days=1 if local.time() > site.cut_off else 0)

    day = production_day(received, centre=site)

    assert day >= first
    assert _is_open_by_the_book(day, site)
    skipped = [first + timedelta(days=n) for n in range((day - first).days)]
    assert not any(_is_open_by_the_book(d, site) for d in skipped)


@quick
@given(received=received_ats, site=centres, days=st.integers(min_value=0, max_value=20))
def test_one_more_working_day_is_a_later_local_day(
    received: datetime, site: PersonalizationCentre, days: int
) -> None:
    def due_in(n: int) -> datetime:
        rules = (SlaRule(working_days=n),)
        return due_date(received, centre=site, rules=rules, issuance=CREATION, priority=None)

    earlier, later = due_in(days), due_in(days + 1)

    zone = ZoneInfo(site.time_zone)
    assert later > earlier
    assert later.astimezone(zone).date() > earlier.astimezone(zone).date()


@quick
@given(
    received=received_ats,
    site=centres,
    delay=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=10)),
    days=st.integers(min_value=0, max_value=10),
)
def test_a_later_request_is_never_due_earlier(
    received: datetime, site: PersonalizationCentre, delay: timedelta, days: int
) -> None:
    rules = (SlaRule(working_days=days),)

    first = due_date(received, centre=site, rules=rules, issuance=RENEWAL, priority=None)
    later = received.astimezone(UTC) + delay  # elapsed time, not wall-clock arithmetic
    second = due_date(later, centre=site, rules=rules, issuance=RENEWAL, priority=None)

    assert second >= first


# --- Standing --------------------------------------------------------------------------------

RECEIVED = utc("2026-03-10 08:00")
DUE = utc("2026-03-10 18:00")  # a ten-hour window


@pytest.mark.parametrize(
    ("elapsed", "fraction", "expected"),
    [
        (timedelta(hours=-1), DEFAULT_AT_RISK_FRACTION, SlaStanding.ON_TIME),  # clock skew
        (timedelta(0), DEFAULT_AT_RISK_FRACTION, SlaStanding.ON_TIME),
        (timedelta(hours=7, minutes=59, seconds=59), DEFAULT_AT_RISK_FRACTION, SlaStanding.ON_TIME),
        (timedelta(hours=8), DEFAULT_AT_RISK_FRACTION, SlaStanding.AT_RISK),  # 0.8 exactly
        (timedelta(hours=9), DEFAULT_AT_RISK_FRACTION, SlaStanding.AT_RISK),
        (timedelta(hours=10), DEFAULT_AT_RISK_FRACTION, SlaStanding.AT_RISK),  # at the due date
        (timedelta(hours=10, microseconds=1), DEFAULT_AT_RISK_FRACTION, SlaStanding.LATE),
        (timedelta(days=3), DEFAULT_AT_RISK_FRACTION, SlaStanding.LATE),
        (timedelta(hours=4, minutes=59), 0.5, SlaStanding.ON_TIME),
        (timedelta(hours=5), 0.5, SlaStanding.AT_RISK),
        (timedelta(hours=9, minutes=59), 1.0, SlaStanding.ON_TIME),
        (timedelta(hours=10), 1.0, SlaStanding.AT_RISK),
    ],
)
def test_standing(elapsed: timedelta, fraction: float, expected: SlaStanding) -> None:
    now = RECEIVED + elapsed

    assert standing(now, received_at=RECEIVED, due=DUE, at_risk_fraction=fraction) is expected


def test_standing_defaults_to_at_risk_from_eighty_percent() -> None:
    assert standing(utc("2026-03-10 16:00"), received_at=RECEIVED, due=DUE) is SlaStanding.AT_RISK
    assert standing(utc("2026-03-10 15:59"), received_at=RECEIVED, due=DUE) is SlaStanding.ON_TIME


def test_standing_compares_instants_not_wall_clocks() -> None:
    now = paris("2026-03-10 17:00")  # 16:00Z: eight hours in

    assert standing(now, received_at=RECEIVED, due=DUE) is SlaStanding.AT_RISK


@pytest.mark.parametrize(
    ("now", "expected"),
    [(RECEIVED, SlaStanding.AT_RISK), (RECEIVED + timedelta(seconds=1), SlaStanding.LATE)],
)
def test_an_empty_window_has_no_slack(now: datetime, expected: SlaStanding) -> None:
    assert standing(now, received_at=RECEIVED, due=RECEIVED) is expected
