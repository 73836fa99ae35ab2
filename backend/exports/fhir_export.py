"""FHIR R4 export: a Bundle of Patients, Questionnaires, QuestionnaireResponses and Observations.

Each patient in the export becomes a pseudonymous Patient (an identifier in the clinic's own
system, PIJNWACHT_FHIR_SYSTEM; the display name only when asked for). Each questionnaire
version used becomes its Questionnaire. Each current response becomes a QuestionnaireResponse
(canonical questionnaire URL with its version, status completed, subject that Patient). Every
item or score whose definition carries a LOINC code (pain NRS 72514-3, PHQ-9 total 44261-6,
GAD-7 total 70274-6, ...) also becomes an Observation derived from that QuestionnaireResponse.
Every reference resolves inside the Bundle: subjects and derivedFrom by fullUrl, questionnaire
canonicals by the Questionnaire entries' url|version.

Bundle type `collection` (a file to read) or `transaction` (to import into a FHIR server):
each entry then PUTs its resource on a stable id, the Patient conditionally on its identifier,
so importing the same export twice updates instead of duplicating.

The Bundle is streamed as JSON text, one entry at a time. Plain dicts encoded by msgspec:
the server needs no FHIR library; the tests validate the output with `fhir.resources` and FHIR.js.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from typing import Any, Literal
from urllib.parse import quote

import msgspec

from backend.diary import store as responses
from backend.diary.definitions import Item, Questionnaire
from backend.diary.fhir_questionnaire import (
    DEFAULT_BASE,
    LOINC,
    answer_coding,
    canonical_url,
    loinc_answer_coding,
    resource_id,
    to_fhir,
)
from backend.diary.questionnaires import Library
from backend.exports.files import read_transaction
from backend.exports.scope import check_has_data, check_range
from backend.patients import store as patients
from backend.platform.storage import iso, utcnow

BundleType = Literal["collection", "transaction"]
UCUM = "http://unitsofmeasure.org"
# UCUM codes of the item units our definitions use (by their English text); any other unit
# is sent as a UCUM annotation, `{text}`, which means "1" to a machine and keeps the word.
UCUM_UNITS = {"hours": "h", "minutes": "min", "days": "d", "%": "%", "mg": "mg"}
CATEGORY = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "survey",
            "display": "Survey",
        }
    ]
}
# Observation, Patient and Questionnaire fullUrls are derived from stable ids (response id and
# code, patient id, questionnaire version), so a re-export gives the same ones.
_NS = uuid.UUID("4b0f3c1e-8f7a-4e52-9a55-6a1f2f0e9d31")


class FhirOptions(msgspec.Struct, kw_only=True, frozen=True):
    """How to write the Bundle: its type, the FHIR base of canonicals, the patients' identifier."""

    bundle: BundleType = "collection"
    base: str = DEFAULT_BASE
    patient_system: str = f"{DEFAULT_BASE}/sid/patient-id"
    # The patient's display name in Patient.name: only when the clinic asks for it.
    with_names: bool = False


def canonical(q: Questionnaire | None, qid: str, version: int, base: str = DEFAULT_BASE) -> str:
    """The questionnaire's canonical URL with its version: `<url>|<version>`."""
    url = canonical_url(q, base) if q is not None else f"{base}/Questionnaire/{qid}"
    return f"{url}|{version}"


def patient_full_url(pid: str) -> str:
    return f"urn:uuid:{uuid.uuid5(_NS, f'Patient/{pid}')}"


def _answer(q: Questionnaire | None, item_id: str, value: Any, base: str) -> dict[str, Any] | None:
    item = q.item(item_id) if q is not None else None
    kind = item.type if item is not None else None
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        return {"valueString": value} if value.strip() else None
    if not isinstance(value, int | float):
        return None
    if kind == "choice" and item is not None and q is not None:
        return {"valueCoding": answer_coding(q, item, int(value), base)}
    if kind in ("scale", "count") or (kind is None and isinstance(value, int)):
        return {"valueInteger": int(value)}
    return {"valueDecimal": value}


def questionnaire_response(
    row: tuple[str, str, str, int, str, str, dict[str, Any]],
    library: Library,
    base: str = DEFAULT_BASE,
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
        answer = _answer(q, item_id, answers[item_id], base)
        if answer is not None:
            items.append({"linkId": item_id, "answer": [answer]})
    resource: dict[str, Any] = {
        "resourceType": "QuestionnaireResponse",
        "id": rid,
        "questionnaire": canonical(q, qid, version, base),
        "status": "completed",
        "subject": {"reference": patient_full_url(pid)},
        "authored": authored,
    }
    if items:
        resource["item"] = items
    return resource


def _item_value(q: Questionnaire, item: Item, value: float, base: str) -> dict[str, Any]:
    if item.type == "choice":
        # Ordinal answers are coded (LOINC's LA code first where the question has one), not numbers.
        local = answer_coding(q, item, int(value), base)
        coded = loinc_answer_coding(item, int(value))
        concept: dict[str, Any] = {"coding": [coded, local] if coded else [local]}
        if "display" in local:
            concept["text"] = local["display"]
        return {"valueCodeableConcept": concept}
    if item.type in ("scale", "count"):
        return {"valueInteger": int(value)}
    unit = item.unit.get("en") if item.unit else None
    code = UCUM_UNITS.get(unit, f"{{{unit}}}") if unit else "1"
    shown = (item.unit.get("nl") or unit) if item.unit else "1"
    return {"valueQuantity": {"value": value, "unit": shown, "system": UCUM, "code": code}}


def observations(
    row: tuple[str, str, str, int, str, str, dict[str, Any]],
    scores: dict[str, Any],
    library: Library,
    base: str = DEFAULT_BASE,
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
            found.append((item.loinc, item.text.get("en", item.id), _item_value(q, item, value, base)))
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
                "subject": {"reference": patient_full_url(pid)},
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
    options: FhirOptions | None = None,
) -> Iterator[str]:
    """The FHIR Bundle of the current responses, their patients, questionnaires and Observations."""
    date_from, date_to = check_range(date_from, date_to)
    check_has_data(conn, patient_id, date_from, date_to, current=True)
    scope = (patient_id, date_from, date_to)
    return _fhir_chunks(conn, library, scope, options or FhirOptions())


def patient_resource(pid: str, name: str | None, options: FhirOptions) -> dict[str, Any]:
    """The pseudonymous Patient: our id as an identifier in the clinic's system, no name unless asked."""
    resource: dict[str, Any] = {"resourceType": "Patient"}
    if options.bundle == "collection":
        # A transaction matches the Patient on its identifier (conditional PUT); an id there
        # would have to equal the one the receiving server already gave it.
        resource["id"] = pid
    resource["identifier"] = [{"use": "secondary", "system": options.patient_system, "value": pid}]
    if options.with_names and name:
        resource["name"] = [{"text": name}]
    return resource


def _request(resource: dict[str, Any], options: FhirOptions) -> dict[str, Any]:
    kind = resource["resourceType"]
    if kind == "Patient":
        ident = resource["identifier"][0]
        key = quote(f"{ident['system']}|{ident['value']}", safe=":/")
        return {"method": "PUT", "url": f"Patient?identifier={key}"}
    return {"method": "PUT", "url": f"{kind}/{resource['id']}"}


def _fhir_chunks(
    conn: sqlite3.Connection,
    library: Library,
    scope: tuple[str | None, str | None, str | None],
    options: FhirOptions,
) -> Iterator[str]:
    close = read_transaction(conn)
    try:
        encode = msgspec.json.encode
        decode = msgspec.json.decode
        head = {
            "resourceType": "Bundle",
            "id": str(uuid.uuid4()),
            "type": options.bundle,
            "timestamp": iso(utcnow()),
        }
        yield encode(head).decode()[:-1] + ',"entry":[\n'
        first = True
        parts: list[str] = []

        def add(full_url: str, resource: dict[str, Any]) -> None:
            nonlocal first
            entry: dict[str, Any] = {"fullUrl": full_url, "resource": resource}
            if options.bundle == "transaction":
                entry["request"] = _request(resource, options)
            text = encode(entry).decode()
            parts.append(text if first else ",\n" + text)
            first = False

        patient_id, date_from, date_to = scope
        if patient_id is not None:
            ids = [patient_id]
        else:
            ids = responses.patients_in(conn, date_from, date_to, current=True)
        names = patients.names(conn, ids)
        for pid in ids:
            if pid in names:
                add(patient_full_url(pid), patient_resource(pid, names[pid], options))
        for qid, version in responses.current_versions(conn, *scope):
            q = library.get(qid, version)
            if q is not None:
                # A urn:uuid like every other entry: an absolute fullUrl on our base would
                # contradict a transaction's PUT on the receiving server's own base.
                full_url = f"urn:uuid:{uuid.uuid5(_NS, f'Questionnaire/{resource_id(q)}')}"
                add(full_url, to_fhir(q, "nl", base=options.base))
        for rid, pid, qid, version, authored, day, answers, scores in responses.current_full(conn, *scope):
            row = (rid, pid, qid, version, authored, day, decode(answers))
            add(f"urn:uuid:{rid}", questionnaire_response(row, library, options.base))
            for obs in observations(row, decode(scores), library, options.base):
                add(f"urn:uuid:{obs['id']}", obs)
            if len(parts) >= 500:
                yield "".join(parts)
                parts.clear()
        parts.append("\n]}\n")
        yield "".join(parts)
    finally:
        close()
