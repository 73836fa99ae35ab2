"""The alerts CSV (contract.md): the inbox's export and the output of `pijnwacht replay`.

The inbox's download comes in the same two variants as the consult CSV:
- standard: the contract's columns (`patient_id,rule_id,category,severity,opened_on,reason`),
  then what the team did with each alert (`status,assigned_to,outcome`), comma-separated, codes;
- `nl`, for Dutch Excel: UTF-8 with BOM, `;`, Dutch column names and the clinic's words for
  rule, kind, severity, status and outcome ("ernstige sufheid", "urgent", "vanzelf gesloten,
  niet gezien", "doorverwezen (huisarts/crisisdienst)"), numbers in the reason with a decimal
  comma; dates stay YYYY-MM-DD, as in the consult CSV (Excel reads them as dates).
Free text (reason, names) is guarded against formulas in both.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Literal

from backend.alerts.names import rule_name, status_name
from backend.exports.files import Sink, spreadsheet_writer
from backend.exports.spreadsheet import guard
from backend.platform.words import word

ALERTS_HEADER = ("patient_id", "rule_id", "category", "severity", "opened_on", "reason")
# After the contract's columns, the inbox's export says what the team did with each alert.
INBOX_EXTRA = ("status", "assigned_to", "outcome")
# The Dutch Excel variant's columns, in order: the patient's name beside the pseudonymous id.
DUTCH_COLUMNS = (
    "patient_id",
    "display_name",
    "rule_id",
    "category",
    "severity",
    "opened_on",
    "reason",
    *INBOX_EXTRA,
)
Dialect = Literal["standard", "nl"]


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


def _dutch_row(r: Mapping[str, Any], library: Any) -> list[str]:
    return [
        r["patient_id"],
        guard(r["display_name"] or ""),
        rule_name(r["rule_id"], library),
        word("category", r["category"]),
        word("severity", r["severity"]),
        r["opened_on"],
        guard(r["reason"]),
        status_name(r),
        guard(r["assignee_name"] or ""),
        word("outcome", r["outcome"]) if r["outcome"] else "",
    ]


def inbox_csv(rows: Iterable[Mapping[str, Any]], library: Any, dialect: Dialect = "standard") -> str:
    """The inbox's alerts (rows of `alerts.store.inbox`) as the CSV a clinician downloads."""
    sink = Sink()
    writer = spreadsheet_writer(sink, dialect == "nl")
    if dialect == "nl":
        writer.writerow([word("column", c) for c in DUTCH_COLUMNS])
        writer.writerows(_dutch_row(r, library) for r in rows)
        return sink.take()
    rows = list(rows)
    lines = alert_rows(rows)
    writer.writerow([*next(lines), *INBOX_EXTRA])
    for r, line in zip(rows, lines, strict=True):
        writer.writerow([*line, r["status"], guard(r["assignee_name"] or ""), r["outcome"] or ""])
    return sink.take()
