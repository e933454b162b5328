"""SLA due dates: when a card must be ready for the carrier, from the centre's clock and calendar.

D1 "SLA management": the SLA runs from the moment the request is received until the card is
shipped (carrier transit is not counted). Working days and the daily cut-off are those of the
personalization centre, in its local calendar and time zone. The request timestamp is converted
to the centre's local time; if that time is strictly after the cut-off, day D is the next calendar
day, otherwise the local calendar day. Day-based SLAs ("D+1") end at the centre's pickup time;
URGENT orders get hours instead of days when received early enough.

The program's `sla` rules are read in order and the first match wins. A rule matches when its
`issuance` is None or equal to the order's, and its `priority` is None or equal to the order's
(an absent priority only matches `priority: None`). An `hours` rule applies only to a request
received on a working day, at a local time strictly before its `before` (if set) and not after
the cut-off; otherwise matching goes on with the next rule. No match: D+1.

Choices D1 leaves to us:

- D rolls forward to the next working day: a request on Saturday is produced from Monday.
- "D+N" is N working days after D (D+0 is D itself); the due date is the centre's `pickup_time`
  on that day, local time, returned as an aware UTC datetime.
- Working days are `centre.working_days`, minus the public holidays of the `holidays` package for
  `holiday_country` / `holiday_subdivision` (no country: no public holidays), minus
  `centre.closed_dates`. The package counts "observed" days (US: Independence Day on a Saturday
  is observed on the Friday before), so those are closed too.
- An `hours` rule gives `received_at + hours` of elapsed time, whatever the DST changes between.

Worked example (Paris centre, cut-off 15:00, pickup 17:00, FR holidays), CREATION orders:
Tuesday 10:00 → D Tuesday → due Wednesday 17:00; Tuesday 15:00:01 → D Wednesday → due Thursday
17:00; Thursday 2026-12-24 10:00 → D+1 would be Christmas → due Monday 2026-12-28 17:00.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

from issuance.domain.centres import PersonalizationCentre, Weekday
from issuance.domain.programs import IssuanceType, ShipmentType, SlaRule

FALLBACK_WORKING_DAYS = 1  # working days after D when no rule matches: D1's typical D+1
DEFAULT_AT_RISK_FRACTION = 0.8  # share of the SLA window elapsed from which an order is at risk
MAX_CLOSED_STRETCH_DAYS = 366  # calendar days searched for a working day; more is a config error
HOLIDAY_CALENDARS_CACHED = 512  # (country, subdivision, year) calendars kept in memory

_ONE_DAY = timedelta(days=1)
_WEEKDAYS = tuple(Weekday)  # indexed by `date.weekday()`: MON is 0, SUN is 6


class SlaStanding(StrEnum):
    """Where an unshipped order stands against its due date."""

    ON_TIME = "ON_TIME"  # less than the at-risk fraction of the SLA window has elapsed
    AT_RISK = "AT_RISK"  # most of the window is gone, the due date has not passed yet
    LATE = "LATE"  # the due date has passed


def due_date(
    received_at: datetime,
    *,
    centre: PersonalizationCentre,
    rules: Sequence[SlaRule],
    issuance: IssuanceType | str,
    priority: str | None,
    shipment_type: ShipmentType | None = None,
) -> datetime:
    """When the card must be ready for the carrier, as an aware UTC datetime.

    `shipment_type` is part of the D1 inputs (`shipment.type`) so callers pass it now; no rule
    field reads it yet. Raises ValueError for a naive `received_at` or an unknown issuance type.
    """
    del shipment_type  # accepted for future rules (e.g. BULK cut-offs); no SlaRule field uses it
    rule = matching_rule(
        received_at, centre=centre, rules=rules, issuance=issuance, priority=priority
    )
    if rule is not None and rule.hours is not None:
        return received_at.astimezone(UTC) + timedelta(hours=rule.hours)
    days = FALLBACK_WORKING_DAYS if rule is None else rule.working_days
    assert days is not None  # SlaRule guarantees exactly one of working_days and hours
    ready_day = add_working_days(production_day(received_at, centre=centre), days, centre=centre)
    return pickup_at(ready_day, centre=centre)


def matching_rule(
    received_at: datetime,
    *,
    centre: PersonalizationCentre,
    rules: Sequence[SlaRule],
    issuance: IssuanceType | str,
    priority: str | None,
) -> SlaRule | None:
    """The first rule that applies to this request, or None (the caller then uses D+1)."""
    kind = IssuanceType(issuance)  # ValueError for a type D1 does not define
    local = _local(received_at, centre=centre)
    for rule in rules:
        if rule.issuance not in (None, kind) or rule.priority not in (None, priority):
            continue
        if rule.hours is None or _hours_rule_applies(rule, local=local, centre=centre):
            return rule
    return None


def _hours_rule_applies(rule: SlaRule, *, local: datetime, centre: PersonalizationCentre) -> bool:
    """Hours are promised only for requests on a working day, before `before` and the cut-off.

    E.g. URGENT 4 hours before 12:00: a request on Tuesday at 11:59 is due at 15:59; at 12:00
    exactly, or on a Saturday, it falls through to the next rule.
    """
    received = local.time()
    return (
        is_working_day(local.date(), centre=centre)
        and (rule.before is None or received < rule.before)
        and received <= centre.cut_off
    )


def production_day(received_at: datetime, *, centre: PersonalizationCentre) -> date:
    """Day D: the local day of receipt, the next one if strictly after the cut-off, rolled
    forward to a working day. E.g. cut-off 15:00: Friday 15:00:00 → Friday; Friday 15:00:01 →
    Saturday → Monday."""
    local = _local(received_at, centre=centre)
    day = local.date()
    if local.time() > centre.cut_off:
        day += _ONE_DAY
    return _first_working_day_from(day, centre=centre)


def add_working_days(day: date, count: int, *, centre: PersonalizationCentre) -> date:
    """The `count`-th working day after `day` (`count` 0: `day` itself, working or not)."""
    for _ in range(count):
        day = _first_working_day_from(day + _ONE_DAY, centre=centre)
    return day


def pickup_at(day: date, *, centre: PersonalizationCentre) -> datetime:
    """The centre's carrier pickup on `day`, local wall-clock time, as an aware UTC datetime."""
    local = datetime.combine(day, centre.pickup_time, tzinfo=ZoneInfo(centre.time_zone))
    return local.astimezone(UTC)


def is_working_day(day: date, *, centre: PersonalizationCentre) -> bool:
    """Whether the centre produces on `day`: a working weekday, not a holiday, not closed."""
    return (
        _WEEKDAYS[day.weekday()] in centre.working_days
        and day not in centre.closed_dates
        and day not in public_holidays(centre.holiday_country, centre.holiday_subdivision, day.year)
    )


@lru_cache(maxsize=HOLIDAY_CALENDARS_CACHED)
def public_holidays(country: str | None, subdivision: str | None, year: int) -> frozenset[date]:
    """The public holidays of one year, cached: the `holidays` package builds calendars slowly
    (the first one of a country imports its module, ~0.1 s for FR).

    Frozen on purpose: a `HolidayBase` silently adds a whole year to itself when asked about a
    date outside the years it was built for, so a shared instance would change under lookups.
    """
    if country is None:
        return frozenset()
    return frozenset(holidays.country_holidays(country, subdiv=subdivision, years=year))


def standing(
    now: datetime,
    *,
    received_at: datetime,
    due: datetime,
    at_risk_fraction: float = DEFAULT_AT_RISK_FRACTION,
) -> SlaStanding:
    """ON_TIME, AT_RISK or LATE for an order not shipped yet at `now`.

    LATE once `now` is after `due`. AT_RISK once the elapsed share of the window,
    (now - received_at) / (due - received_at), reaches `at_risk_fraction`: with a 10-hour window
    and 0.8, from 8 hours after receipt until the due date itself. An empty window (due at or
    before receipt) leaves no slack, so it is AT_RISK until it is LATE.
    """
    if now > due:
        return SlaStanding.LATE
    window = due - received_at
    if window <= timedelta(0) or (now - received_at) / window >= at_risk_fraction:
        return SlaStanding.AT_RISK
    return SlaStanding.ON_TIME


def _local(received_at: datetime, *, centre: PersonalizationCentre) -> datetime:
    """`received_at` on the centre's wall clock; a naive datetime has no instant, so refuse it."""
    if received_at.tzinfo is None or received_at.utcoffset() is None:
        raise ValueError(f"received_at must be timezone-aware, got naive {received_at.isoformat()}")
    return received_at.astimezone(ZoneInfo(centre.time_zone))


def _first_working_day_from(day: date, *, centre: PersonalizationCentre) -> date:
    """`day` if it is a working day, else the next one; a centre closed for a year is a config
    error rather than a reason to loop forever."""
    for offset in range(MAX_CLOSED_STRETCH_DAYS):
        candidate = day + offset * _ONE_DAY
        if is_working_day(candidate, centre=centre):
            return candidate
    raise ValueError(
        f"centre {centre.centre_id!r} has no working day within {MAX_CLOSED_STRETCH_DAYS} days"
        f" of {day.isoformat()}"
    )
