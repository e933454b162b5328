"""Personalization centres: the sites that make cards, with the clock and calendar of each."""

from __future__ import annotations

from datetime import date, time
from enum import StrEnum
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
from pydantic import Field, field_validator, model_validator

from issuance.domain.programs_base import ConfigModel, CountryCode, Identifier


class Weekday(StrEnum):
    MON = "MON"
    TUE = "TUE"
    WED = "WED"
    THU = "THU"
    FRI = "FRI"
    SAT = "SAT"
    SUN = "SUN"


class PersonalizationCentre(ConfigModel):
    """A site that personalizes cards: its clock and calendar drive the SLA due date."""

    centre_id: Identifier
    name: str
    time_zone: str
    cut_off: time = time(15, 0)  # local time; requests strictly after it start the next day
    pickup_time: time = time(17, 0)  # local time the carrier collects the day's cards
    working_days: Annotated[tuple[Weekday, ...], Field(min_length=1)] = (
        Weekday.MON,
        Weekday.TUE,
        Weekday.WED,
        Weekday.THU,
        Weekday.FRI,
    )
    holiday_country: CountryCode | None = None  # public holidays from the `holidays` package
    holiday_subdivision: str | None = None
    closed_dates: tuple[date, ...] = ()  # extra ISO dates the centre is closed
    # The public key production batch files are encrypted for (docs/production-files.md): an EC
    # P-256 public JWK, or the path of a file holding one. Without it, the key file
    # `centres/<centreId>.public.json` of the keys directory is used (the sandbox makes one).
    file_encryption_key: dict[str, str] | str | None = None

    @model_validator(mode="after")
    def _calendar_is_coherent(self) -> PersonalizationCentre:
        if self.cut_off > self.pickup_time:
            raise ValueError("cutOff must not be later than pickupTime")
        if self.holiday_country is not None:
            try:
                holidays.country_holidays(
                    self.holiday_country, subdiv=self.holiday_subdivision, years=2026
                )
            except NotImplementedError:
                raise ValueError(
                    f"no public holiday calendar for {self.holiday_country} {self.holiday_subdivision or ''}"
                ) from None
        elif self.holiday_subdivision is not None:
            raise ValueError("holidaySubdivision needs a holidayCountry")
        return self

    @field_validator("file_encryption_key")
    @classmethod
    def _public_p256(cls, value: dict[str, str] | str | None) -> dict[str, str] | str | None:
        if isinstance(value, dict):
            if value.get("kty") != "EC" or value.get("crv") != "P-256":
                raise ValueError("must be an EC P-256 JWK (kty EC, crv P-256)")
            if "d" in value:
                raise ValueError("must be the centre's public key: remove the private part `d`")
            if not value.get("x") or not value.get("y"):
                raise ValueError("the JWK needs its x and y coordinates")
        return value

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: "Europe" is a directory
            raise ValueError(f"{value!r} is not an IANA time zone") from None
        return value
