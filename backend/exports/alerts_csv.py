"""The alerts CSV (contract.md): the inbox's export and the output of `pijnwacht replay`."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from backend.exports.spreadsheet import guard

ALERTS_HEADER = ("patient_id", "rule_id", "category", "severity", "opened_on", "reason")


def alert_rows(rows: Iterable[Mapping[str, Any]]) -> Iterator[list[str]]:
    """Alerts as rows of the alerts CSV, header first (the reason guarded against formulas)."""
    yield list(ALERTS_HEADER)
    for r in rows:
        yield [
            r["patient_id"],
            r["rule_id"],
            r["category"],
            r["severity"],
            r["opened_on"],
            guard(r["reason"]),
        ]
