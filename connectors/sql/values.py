"""Database values as JSON: what a driver hands back, made storable in a task's output.

dates, times and datetimes: ISO 8601 (`2024-05-01`, `13:45:00`, `2024-05-01T13:45:00+00:00`); durations
(PostgreSQL interval, MySQL TIME): ISO 8601 durations (`P1DT2H3M4.5S`, negative as `-P...`); decimals: strings,
exactly as stored (`"12.50"`); bytes: base64 (RFC 4648, with padding); UUIDs, network addresses and anything
else without a JSON form: their text; non-finite floats: "NaN", "Infinity", "-Infinity"; JSON columns, arrays
and sets: JSON arrays and objects of the same conversions.
"""
from __future__ import annotations

import base64
import datetime
import math
from decimal import Decimal
from typing import Any


def iso_duration(delta: datetime.timedelta) -> str:
    sign = "-" if delta < datetime.timedelta(0) else ""
    delta = abs(delta)
    hours, rest = divmod(delta.seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    fraction = f".{delta.microseconds:06d}".rstrip("0") if delta.microseconds else ""
    date = f"{delta.days}D" if delta.days else ""
    clock = "".join(f"{n}{unit}" for n, unit in ((hours, "H"), (minutes, "M")) if n)
    if seconds or fraction or not (date or clock):
        clock += f"{seconds}{fraction}S"
    return f"{sign}P{date}{'T' + clock if clock else ''}"


def json_safe(value: Any) -> Any:
    """`value` as plain JSON data (see the module docstring for each type)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return iso_duration(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    if isinstance(value, (set, frozenset)):  # MySQL SET columns
        return sorted(json_safe(item) for item in value)
    return str(value)  # UUID, IP addresses and networks, ranges, ...


def column_names(names: list[str]) -> list[str]:
    """Column names as row keys; a repeated name gets a suffix (`id`, `id_2`) instead of hiding a value."""
    seen: set[str] = set()
    unique = []
    for name in names:
        candidate, n = name, 1
        while candidate in seen:
            n += 1
            candidate = f"{name}_{n}"
        seen.add(candidate)
        unique.append(candidate)
    return unique
