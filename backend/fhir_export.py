"""FHIR R4 export: a Bundle (type collection) of QuestionnaireResponses and LOINC Observations.

Each current response becomes a QuestionnaireResponse (canonical questionnaire URL with its
version, status completed, subject the patient's pseudonymous id, never a name). Every item
or score whose definition carries a LOINC code (pain NRS 72514-3, PHQ-9 total 44261-6, GAD-7
total 70274-6, ...) also becomes an Observation derived from that QuestionnaireResponse.
The Bundle is streamed as JSON text, one entry at a time. Plain dicts encoded by msgspec:
the server needs no FHIR library; the tests validate the output with `fhir.resources`.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from typing import Any

import msgspec

from backend.exports import (
    _check_patient_has_data,
    _check_range,
    _read_transaction,
    _where,
)
from backend.questionnaires import Library, Questionnaire
from backend.storage import iso, utcnow

BASE = "https://pijnwacht.nl/fhir"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
CATEGORY = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "survey",
            "display": "Survey",
        }
    ]
}
# Observation ids are derived from the response id and the code, so a re-export gives the
# same ids (a receiving system can update instead of duplicating).
_NS = uuid.UUID("4b0f3c1e-8f7a-4e52-9a55-6a1f2f0e9d31")


def canonical(q: Questionnaire | None, qid: str, version: int) -> str:
    """The questionnaire's canonical URL with its version: `<url>|<version>`."""
    url = (q.url if q is not None and q.url else None) or f"{BASE}/Questionnaire/{qid}"
    return f"{url}|{version}"


def _answer(q: Questionnaire | None, qid: str, item_id: str, value: Any) -> dict[str, Any] | None:
    item = q.item(item_id) if q is not None else None
    kind = item.type if item is not None else None
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        return {"valueString": value} if value.strip() else None
    if not isinstance(value, int | float):
        return None
    if kind == "choice" and item is not None:
        coding: dict[str, Any] = {
            "system": f"{BASE}/CodeSystem/{qid}-{item_id}",
            "code": str(int(value)),
        }
        for option in item.options or []:
            if option.value == value:
                coding["display"] = option.text.get("nl") or option.text.get("en")
        return {"valueCoding": coding}
    if kind in ("scale", "count") or (kind is None and isinstance(value, int)):
        return {"valueInteger": int(value)}
    return {"valueDecimal": value}


def questionnaire_response(
    row: tuple[str, str, str, int, str, str, dict[str, Any]], library: Library
) -> dict[str, Any]:
    """One stored response (id, patient, questionnaire, version, authored_at, local_date,
    answers) as a FHIR QuestionnaireResponse."""
    rid, pid, qid, version, authored, _day, answers = row
    q = library.get(qid, version) or library.get(qid)
    items = []
    order = [i.id for i in q.items] if q is not None else []
    for item_id in order + [k for k in answers if k not in order]:
        if item_id not in answers:
            continue
        answer = _answer(q, qid, item_id, answers[item_id])
        if answer is not None:
            items.append({"linkId": item_id, "answer": [answer]})
    resource: dict[str, Any] = {
        "resourceType": "QuestionnaireResponse",
        "id": rid,
        "questionnaire": canonical(q, qid, version),
        "status": "completed",
        "subject": {"reference": f"Patient/{pid}"},
        "authored": authored,
    }
    if items:
        resource["item"] = items
    return resource


def observations(
    row: tuple[str, str, str, int, str, str, dict[str, Any]],
    scores: dict[str, Any],
    library: Library,
) -> list[dict[str, Any]]:
    """The LOINC-coded items and scores of one response as Observations."""
    rid, pid, qid, version, authored, _day, answers = row
    q = library.get(qid, version) or library.get(qid)
    if q is None:
        return []
    found: list[tuple[str, str, dict[str, Any]]] = []
    for item in q.items:
        value = answers.get(item.id)
        if item.loinc and isinstance(value, int | float) and not isinstance(value, bool):
            val = (
                {"valueInteger": int(value)}
                if item.type in ("scale", "count", "choice")
                else {"valueQuantity": {"value": value, "system": UCUM, "code": "1", "unit": "1"}}
            )
            found.append((item.loinc, item.text.get("en", item.id), val))
    for score in q.scores:
        value = scores.get(score.id)
        if score.loinc and isinstance(value, int | float) and not isinstance(value, bool):
            if score.method == "sum" and float(value).is_integer():
                val = {"valueInteger": int(value)}
            else:
                val = {
                    "valueQuantity": {"value": value, "system": UCUM, "code": "{score}", "unit": "{score}"}
                }
            found.append((score.loinc, score.label.get("en", score.id), val))
    out = []
    for code, text, value in found:
        out.append(
            {
                "resourceType": "Observation",
                "id": str(uuid.uuid5(_NS, f"{rid}/{code}")),
                "status": "final",
                "category": [CATEGORY],
                "code": {"coding": [{"system": LOINC, "code": code}], "text": text},
                "subject": {"reference": f"Patient/{pid}"},
                "effectiveDateTime": authored,
                **value,
                "derivedFrom": [{"reference": f"urn:uuid:{rid}"}],
            }
        )
    return out


def iter_fhir(
    conn: sqlite3.Connection,
    library: Library,
    *,
    patient_id: str | None = None,
    date_from: str | None = None,
    date_to: str | None = None,
) -> Iterator[str]:
    """The FHIR Bundle (collection) of current responses and their Observations, as JSON text."""
    date_from, date_to = _check_range(date_from, date_to)
    _check_patient_has_data(conn, patient_id, date_from, date_to, table="current_responses")
    where, params = _where(patient_id, date_from, date_to)
    sql = (
        "SELECT r.id, r.patient_id, r.questionnaire_id, r.questionnaire_version, r.authored_at,"
        " r.local_date, r.answers, r.scores FROM current_responses r"
        f"{where} ORDER BY r.patient_id, r.local_date, r.questionnaire_id"
    )
    return _fhir_chunks(conn, library, sql, params)


def _fhir_chunks(conn: sqlite3.Connection, library: Library, sql: str, params: list[Any]) -> Iterator[str]:
    close = _read_transaction(conn)
    try:
        encode = msgspec.json.encode
        decode = msgspec.json.decode
        head = {
            "resourceType": "Bundle",
            "id": str(uuid.uuid4()),
            "type": "collection",
            "timestamp": iso(utcnow()),
        }
        yield encode(head).decode()[:-1] + ',"entry":[\n'
        cur = conn.cursor()
        cur.row_factory = None
        cur.execute(sql, params)
        first = True
        parts: list[str] = []
        for rid, pid, qid, version, authored, day, answers, scores in cur:
            row = (rid, pid, qid, version, authored, day, decode(answers))
            resources = [questionnaire_response(row, library)]
            resources += observations(row, decode(scores), library)
            for resource in resources:
                full_url = (
                    f"urn:uuid:{rid}"
                    if resource["resourceType"] == "QuestionnaireResponse"
                    else f"urn:uuid:{resource['id']}"
                )
                entry = encode({"fullUrl": full_url, "resource": resource}).decode()
                parts.append(entry if first else ",\n" + entry)
                first = False
            if len(parts) >= 500:
                yield "".join(parts)
                parts.clear()
        parts.append("\n]}\n")
        yield "".join(parts)
    finally:
        close()
