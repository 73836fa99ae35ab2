"""FHIR that a FHIR server accepts: the export checked by two validators (fhir.resources and
FHIR.js, which works from the R4 structure definitions), every reference and every coded answer
resolving inside the Bundle, the transaction bundle, the Questionnaire read API, and every SDC
scoring expression run by an independent FHIRPath engine (fhirpathpy) against the server's scores."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import tempfile
import uuid
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest
from fhirpathpy import compile as fhirpath
from fhirpathpy.models import models

from backend import cli
from backend.diary import responses
from backend.diary.definitions import Item, Questionnaire
from backend.diary.fhir_questionnaire import EXT_CALCULATED, calculated_expression, to_fhir
from backend.diary.questionnaires import Library, check_answers, load_library
from backend.diary.scoring import compute_scores
from backend.exports.fhir_export import FhirOptions, iter_fhir, observations, questionnaire_response
from backend.patients import enrolment
from backend.platform import migrations
from backend.platform.settings import PROJECT_ROOT
from backend.platform.storage import connect

from .conftest import AMS
from .licensed import write_licensed

QDIR = PROJECT_ROOT / "questionnaires"
# The clinic supplied every licensed text: patients may answer every instrument.
LICENSED = write_licensed(Path(tempfile.mkdtemp(prefix="licensed-")), "bpi", "eq5d5l", "odi", "odi.v2", "dn4")
LIBRARY = load_library(QDIR, licensed_dir=LICENSED)
VALIDATOR = Path(__file__).with_name("fhir_validate.js")
INSTRUMENTS = sorted({qid for qid, _v in LIBRARY.by_version})


# -- answer sets --------------------------------------------------------------------------
def random_answers(q: Questionnaire, rng: random.Random, skip: float = 0.0, keep_required: bool = True):
    """Answers for every item of `q`, each left out with chance `skip` (required ones kept)."""
    answers: dict[str, Any] = {}
    for item in q.items:
        if rng.random() < skip and not (keep_required and item.required):
            continue
        value = _random_value(item, rng)
        if value is not None:
            answers[item.id] = value
    return answers


def _random_value(item: Item, rng: random.Random) -> Any:
    if item.type == "choice":
        return rng.choice(item.options or []).value
    if item.type == "text":
        return rng.choice(["", "slecht geslapen", "wandeling, 20 min"]) or None
    assert item.min is not None and item.max is not None
    if item.type in ("scale", "count"):
        return rng.randint(int(item.min), int(item.max))
    step = item.step or 0.5
    return round(item.min + rng.randint(0, int((item.max - item.min) / step)) * step, 4)


def half_up(value: Decimal | float, decimals: int) -> float:
    return float(Decimal(str(value)).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP))


# -- a database with every instrument, some answers missing --------------------------------
def _store(conn, patient, day: date, q: Questionnaire, answers: dict[str, Any]) -> None:
    authored = datetime.combine(day, datetime.min.time(), AMS).replace(hour=20, minute=15)
    body = responses.ResponseIn(
        questionnaire=q.id,
        version=q.version,
        authored_at=authored.isoformat(),
        local_date=day.isoformat(),
        answers=answers,
    )
    checked = responses.check(str(uuid.uuid4()), body, patient, LIBRARY, authored + timedelta(hours=1))
    conn.execute("BEGIN IMMEDIATE")
    responses.store(conn, patient, [checked], now=authored + timedelta(hours=1))
    conn.execute("COMMIT")


@pytest.fixture(scope="module")
def filled_db(tmp_path_factory):
    """Three patients, two weeks of diaries each and every instrument twice (random answers)."""
    path = tmp_path_factory.mktemp("fhir") / "pijnwacht.db"
    conn = connect(path)
    migrations.apply(conn)
    rng = random.Random(18)
    start = date(2026, 1, 5)
    for name in ("Mevr. Geheimnaam", "Dhr. Verborgen", "Mevr. Anoniem"):
        patient, _code, _exp = enrolment.create_patient(
            conn,
            display_name=name,
            pathway_id="chronic-pain",
            known_pathways={"chronic-pain"},
            anchor_date=start,
        )
        for n in range(14):
            day = start + timedelta(days=n)
            for qid in ["diary"] if n not in (0, 7) else INSTRUMENTS:
                q = LIBRARY.get(qid)
                assert q is not None
                # Optional items left out at random; a set the server would refuse is drawn again.
                answers = random_answers(q, rng, skip=0.3)
                while check_answers(q, answers):
                    answers = random_answers(q, rng, skip=0.3)
                _store(conn, patient, day, q, answers)
    yield path, conn
    conn.close()


def _export(conn, **options) -> dict[str, Any]:
    return json.loads("".join(iter_fhir(conn, LIBRARY, options=FhirOptions(**options))))


def _references(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["reference"]] if isinstance(node.get("reference"), str) else []
        return found + [r for v in node.values() for r in _references(v)]
    if isinstance(node, list):
        return [r for v in node for r in _references(v)]
    return []


def _options_by_item(questionnaire: dict[str, Any]) -> dict[str, set[tuple[str, str]]]:
    out: dict[str, set[tuple[str, str]]] = {}

    def walk(items: list[dict[str, Any]]) -> None:
        for item in items:
            if "answerOption" in item:
                out[item["linkId"]] = {
                    (o["valueCoding"]["system"], o["valueCoding"]["code"]) for o in item["answerOption"]
                }
            walk(item.get("item", []))

    walk(questionnaire.get("item", []))
    return out


# -- the export ----------------------------------------------------------------------------
def test_every_reference_resolves_inside_the_bundle(filled_db):
    _path, conn = filled_db
    bundle = _export(conn)
    entries = bundle["entry"]
    full_urls = [e["fullUrl"] for e in entries]
    assert len(set(full_urls)) == len(full_urls)
    refs = _references(entries)
    assert refs and set(refs) <= set(full_urls)
    kinds = {e["resource"]["resourceType"] for e in entries}
    assert kinds == {"Patient", "Questionnaire", "QuestionnaireResponse", "Observation"}
    canonicals = {
        f"{e['resource']['url']}|{e['resource']['version']}" for e in entries if "url" in e["resource"]
    }
    responses_ = [e["resource"] for e in entries if e["resource"]["resourceType"] == "QuestionnaireResponse"]
    assert {r["questionnaire"] for r in responses_} == canonicals  # every one used, every one there
    patients = [e["resource"] for e in entries if e["resource"]["resourceType"] == "Patient"]
    assert len(patients) == 3 and all("name" not in p for p in patients)
    assert {p["identifier"][0]["system"] for p in patients} == {FhirOptions().patient_system}
    assert "Geheimnaam" not in json.dumps(bundle)


def test_every_coded_answer_is_one_of_its_questionnaire_items_options(filled_db):
    _path, conn = filled_db
    entries = _export(conn)["entry"]
    options = {
        f"{e['resource']['url']}|{e['resource']['version']}": _options_by_item(e["resource"])
        for e in entries
        if e["resource"]["resourceType"] == "Questionnaire"
    }
    matched = 0
    for e in entries:
        qr = e["resource"]
        if qr["resourceType"] != "QuestionnaireResponse":
            continue
        allowed = options[qr["questionnaire"]]
        for item in qr.get("item", []):
            for answer in item["answer"]:
                if "valueCoding" in answer:
                    coding = answer["valueCoding"]
                    assert (coding["system"], coding["code"]) in allowed[item["linkId"]], item
                    matched += 1
    assert matched > 300  # every instrument answered, diaries' side-effect choices too


# LOINC answer lists LL358-3 (PHQ-9/GAD-7 frequency items) and LL359-1 (69722-7), by value 0-3.
LL358_3 = ["LA6568-5", "LA6569-3", "LA6570-1", "LA6571-9"]
LL359_1 = ["LA6572-7", "LA6573-5", "LA6575-0", "LA6574-3"]


def test_ordinal_phq9_and_gad7_items_carry_loinc_answer_codes(filled_db):
    _path, conn = filled_db
    obs = [e["resource"] for e in _export(conn)["entry"] if e["resource"]["resourceType"] == "Observation"]
    items = {i.loinc: i for qid in ("phq9", "gad7") for i in LIBRARY.get(qid).items if i.loinc}
    assert len(items) == 9 + 1 + 7
    seen = set()
    for o in obs:
        code = o["code"]["coding"][0]["code"]
        if code not in items:
            assert "valueCodeableConcept" not in o  # totals and the pain NRS stay numbers
            continue
        assert "valueInteger" not in o
        loinc, local = o["valueCodeableConcept"]["coding"]
        expected = (LL359_1 if code == "69722-7" else LL358_3)[int(local["code"])]
        assert loinc["system"] == "http://loinc.org" and loinc["code"] == expected
        assert local["system"].endswith(f"/answers/{items[code].id}")
        seen.add(code)
    assert seen == set(items)


def test_numeric_loinc_item_takes_its_unit_from_the_item():
    diary = LIBRARY.get("diary")
    assert diary is not None
    hours = next(i for i in diary.items if i.id == "sleep_hours")
    coded = Questionnaire(
        id="sleep",
        version=1,
        title={"nl": "Slaap", "en": "Sleep"},
        items=[msgspec_replace(hours, loinc="93832-4")],
    )
    lib = Library(by_version={("sleep", 1): coded}, latest={"sleep": coded})
    row = ("3f1c2a9e-8b7d-4c55-9a10-2f6b7c8d9e01", "p1", "sleep", 1, "2026-01-05T19:15:00Z", "2026-01-05", {})
    [obs] = observations((*row[:6], {"sleep_hours": 6.5}), {}, lib)
    assert obs["valueQuantity"] == {
        "value": 6.5,
        "unit": "uur",
        "system": "http://unitsofmeasure.org",
        "code": "h",
    }


def msgspec_replace(item: Item, **changes: Any) -> Item:
    import msgspec

    return msgspec.structs.replace(item, **changes)


def test_names_only_when_the_clinic_asks(filled_db):
    _path, conn = filled_db
    bundle = _export(conn, with_names=True, patient_system="https://ziekenhuis.example/pijnwacht-id")
    patients = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"]
    assert sorted(p["name"][0]["text"] for p in patients) == [
        "Dhr. Verborgen",
        "Mevr. Anoniem",
        "Mevr. Geheimnaam",
    ]
    assert {p["identifier"][0]["system"] for p in patients} == {"https://ziekenhuis.example/pijnwacht-id"}


def test_the_bundle_validates_in_fhir_resources(filled_db):
    # fhir.resources 8 ships R4B, not R4; the resources used here are the same in both.
    from fhir.resources.R4B.bundle import Bundle

    _path, conn = filled_db
    for kind in ("collection", "transaction"):
        bundle = Bundle.model_validate(_export(conn, bundle=kind))
        assert bundle.type == kind and len(bundle.entry) > 200


def _fhir_js(tmp_path: Path, resources: dict[str, Any]) -> list[dict[str, Any]]:
    node = shutil.which("node")
    assert node, "node is needed for the FHIR.js validator (make install-test browser-deps)"
    files = []
    for name, resource in resources.items():
        files.append(tmp_path / f"{name}.json")
        files[-1].write_text(json.dumps(resource))
    done = subprocess.run(
        [node, str(VALIDATOR), *map(str, files)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_the_bundle_and_the_questionnaires_validate_in_fhir_js(filled_db, tmp_path):
    _path, conn = filled_db
    bad = {"resourceType": "Observation", "status": "done", "code": {"text": "x"}, "valueInteger": "7"}
    results = _fhir_js(
        tmp_path,
        {
            "collection": _export(conn),
            "transaction": _export(conn, bundle="transaction"),
            **{f"q-{qid}-{v}": to_fhir(q) for (qid, v), q in LIBRARY.by_version.items()},
            "negative-control": bad,
        },
    )
    by_file = {Path(r["file"]).stem: r for r in results}
    control = by_file.pop("negative-control")
    assert not control["valid"] and len(control["errors"]) == 2  # the validator does catch errors
    for name, result in by_file.items():
        assert result["valid"] and result["errors"] == [], (name, result["errors"][:3])
        # FHIR.js has no LOINC and not the example value sets: those are all it may remark on.
        for w in result["warnings"]:
            loinc = w["severity"] == "warning" and "(http://loinc.org) not found in value set" in w["message"]
            example = w["severity"] == "info" and w["message"].endswith("could not be found.")
            assert loinc or example, (name, w)


# -- the transaction bundle ------------------------------------------------------------------
def test_transaction_puts_on_stable_ids_so_a_second_import_updates(filled_db):
    _path, conn = filled_db
    first, second = _export(conn, bundle="transaction"), _export(conn, bundle="transaction")
    assert first["type"] == "transaction"
    server: dict[str, dict[str, Any]] = {}  # what a FHIR server keeps, by the URL each PUT names
    for bundle in (first, second):
        for e in bundle["entry"]:
            assert e["request"]["method"] == "PUT"
            server[e["request"]["url"]] = e["resource"]
    assert len(server) == len(first["entry"])  # importing twice: same count, nothing duplicated
    urls = [e["request"]["url"] for e in first["entry"]]
    assert [e["request"]["url"] for e in second["entry"]] == urls
    patients = [u for u in urls if u.startswith("Patient")]
    assert patients and all(u.startswith("Patient?identifier=") and "%7C" in u for u in patients)
    others = [e for e in first["entry"] if e["resource"]["resourceType"] != "Patient"]
    assert all(
        e["request"]["url"] == f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in others
    )


def test_cli_writes_a_transaction_bundle(filled_db, tmp_path, monkeypatch):
    path, _conn = filled_db
    monkeypatch.setenv("PIJNWACHT_PUBLIC_URL", "https://pijn.ziekenhuis.example")
    monkeypatch.setenv("PIJNWACHT_FHIR_SYSTEM", "https://ziekenhuis.example/sid/pijnwacht")
    out = tmp_path / "t.json"
    args = ["--db", str(path), "export", "--format", "fhir", "--bundle", "transaction", "-o", str(out)]
    assert cli.main(args) == 0
    bundle = json.loads(out.read_text())
    assert bundle["type"] == "transaction"
    qr = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "QuestionnaireResponse"
    )
    assert qr["questionnaire"].startswith("https://pijn.ziekenhuis.example/fhir/Questionnaire/")
    patient = next(e for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    assert patient["resource"]["identifier"][0]["system"] == "https://ziekenhuis.example/sid/pijnwacht"
    wide = ["--db", str(path), "export", "--format", "wide", "--bundle", "transaction", "-o", str(out)]
    assert cli.main(wide) == 2  # a FHIR option on a CSV export is a mistake, not ignored


# -- the Questionnaire read API ------------------------------------------------------------
def test_questionnaire_search_and_read(client, settings):
    r = client.get("/fhir/Questionnaire")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/fhir+json")
    bundle = r.json()
    assert bundle["type"] == "searchset" and bundle["total"] == len(LIBRARY.by_version)
    phq9 = next(e for e in bundle["entry"] if e["resource"]["id"] == "phq9-v1")
    assert phq9["fullUrl"] == f"{settings.fhir_base}/Questionnaire/phq9-v1"
    r = client.get("/fhir/Questionnaire/phq9-v1")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/fhir+json")
    assert r.json() == phq9["resource"]


def test_a_responses_canonical_resolves_on_the_server_that_wrote_it(client, settings):
    qr = questionnaire_response(
        ("3f1c2a9e-8b7d-4c55-9a10-2f6b7c8d9e01", "p1", "gad7", 1, "2026-01-05T19:15:00Z", "2026-01-05", {}),
        LIBRARY,
        settings.fhir_base,
    )
    url, version = qr["questionnaire"].split("|")
    path = url.removeprefix(settings.base_url)
    r = client.get(path)  # the canonical itself: its latest version
    assert r.status_code == 200 and r.json()["url"] == url and r.json()["version"] == version
    found = client.get("/fhir/Questionnaire", params={"url": qr["questionnaire"]}).json()
    assert [e["resource"]["id"] for e in found["entry"]] == ["gad7-v1"]


def test_licensed_wording_is_not_published_but_structure_and_codes_are(client):
    from fhir.resources.R4B.questionnaire import Questionnaire as FhirQuestionnaire

    odi = LIBRARY.get("odi")
    assert odi is not None and odi.licence == "licensed"
    r = client.get(f"/fhir/Questionnaire/odi-v{odi.version}")
    assert r.status_code == 200
    served = r.json()
    FhirQuestionnaire.model_validate(served)
    assert "copyright" in served and "description" not in served
    items = {i["linkId"]: i for i in served["item"]}
    assert "text" not in items["odi_3"] and all(
        "display" not in o["valueCoding"] for o in items["odi_3"]["answerOption"]
    )
    assert [o["valueCoding"]["code"] for o in items["odi_3"]["answerOption"]] == [
        "0",
        "1",
        "2",
        "3",
        "4",
        "5",
    ]
    assert items["odi_score"]["text"] == "ODI-score"  # the score's name and scoring are ours
    phq9 = client.get("/fhir/Questionnaire/phq9-v1").json()  # an open instrument: in full
    assert next(i for i in phq9["item"] if i["linkId"] == "phq9_1")["text"].startswith("Weinig interesse")


def test_unknown_questionnaire_is_a_404_operation_outcome(client):
    r = client.get("/fhir/Questionnaire/geen-v9")
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/fhir+json")
    outcome = r.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "not-found" and "geen-v9" in outcome["issue"][0]["diagnostics"]
    assert "bestaat niet" in outcome["issue"][0]["diagnostics"]


# -- scoring expressions -------------------------------------------------------------------
EXPRESSIONS = [
    (q, score)
    for q in LIBRARY.by_version.values()
    for score in q.scores
    if calculated_expression(q, score) is not None
]


def test_every_scoring_expression_is_in_the_questionnaire():
    # The tested expressions are the ones the Questionnaire resources carry.
    for q, score in EXPRESSIONS:
        item = next(i for i in to_fhir(q)["item"] if i["linkId"] == score.id)
        ext = next(e for e in item["extension"] if e["url"] == EXT_CALCULATED)
        assert ext["valueExpression"]["expression"] == calculated_expression(q, score)
    assert {q.id for q, _s in EXPRESSIONS} >= {"phq9", "gad7", "dn4", "esas", "peg", "pgic", "bpi", "eq5d5l"}


@pytest.mark.parametrize("q,score", EXPRESSIONS, ids=[f"{q.id}-v{q.version}-{s.id}" for q, s in EXPRESSIONS])
def test_scoring_expression_agrees_with_the_server(q: Questionnaire, score):
    expression = calculated_expression(q, score)
    assert expression is not None
    run = fhirpath(expression, models["r4"])
    rng = random.Random(f"{q.id}/{score.id}")
    checked = with_score = 0
    for n in range(90):
        # A third answered in full, the rest with a few or many items missing (required ones
        # too: a form filler shows the score while the form is being filled in).
        answers = random_answers(q, rng, skip=(0.0, 0.25, 0.6)[n % 3], keep_required=False)
        server = compute_scores(q, answers).get(score.id)
        qr = questionnaire_response(
            (
                "3f1c2a9e-8b7d-4c55-9a10-2f6b7c8d9e01",
                "p1",
                q.id,
                q.version,
                "2026-01-05T19:15:00Z",
                "",
                answers,
            ),
            LIBRARY,
        )
        result = run(qr, {"resource": qr})
        if server is None:
            assert result == [], (answers, result)
        else:
            assert len(result) == 1 and half_up(result[0], score.decimals) == server, (
                answers,
                result,
                server,
            )
            with_score += 1
        checked += 1
    assert with_score >= 30
    assert checked - with_score >= 10 or score.method == "answered"  # a count is always there


def test_the_404_speaks_english_when_asked(client):
    r = client.get("/fhir/Questionnaire/geen-v9", headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert r.status_code == 404 and "does not exist" in r.json()["issue"][0]["diagnostics"]
