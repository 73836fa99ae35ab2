"""The message catalogue: every refusal in the patient's language, Dutch unless chosen otherwise."""

from __future__ import annotations

import string

from backend.platform import messages
from tests.conftest import diary, new_id


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_every_message_has_dutch_and_english_and_both_fill_in():
    for key, entry in messages.MESSAGES.items():
        assert set(entry) == set(messages.LANGUAGES), key
        names = _fields(entry["nl"]) | _fields(entry["en"])
        for lang in messages.LANGUAGES:
            assert messages.text(key, lang, **dict.fromkeys(names, "x")), key


def test_the_language_is_the_patients_else_accept_language_else_dutch():
    assert messages.pick("en", "nl") == "en"
    assert messages.pick(None, None) == "nl"
    assert messages.pick(None, "en-GB,en;q=0.9") == "en"
    assert messages.pick(None, "fr-FR, en;q=0.5, nl;q=0.8") == "nl"
    assert messages.pick(None, "de, fr") == "nl"
    assert messages.pick(None, "en;q=abc, x" * 1000) == "nl"


def test_a_dutch_patient_is_refused_in_dutch_an_english_one_in_english(client, patient):
    _pid, headers = patient
    body = {**diary(), "answers": {"pain_avg": 11, "pain_worst": 7}}
    r = client.put(f"/api/v1/responses/{new_id()}", json=body, headers=headers)
    assert r.status_code == 422
    assert r.json()["detail"] == "answers.pain_avg: moet tussen 0 en 10 liggen"
    assert r.json()["extra"] == [
        {"field": "answers.pain_avg", "error": "moet tussen 0 en 10 liggen", "code": "answer.between"}
    ]
    assert client.patch("/api/v1/me", json={"language": "en"}, headers=headers).status_code == 200
    r = client.put(f"/api/v1/responses/{new_id()}", json=body, headers=headers)
    assert r.json()["detail"] == "answers.pain_avg: must be between 0 and 10"


def test_without_a_patient_accept_language_decides(client):
    r = client.post("/api/v1/enrol", json={"code": "AAAA-AAAA"})
    assert r.status_code == 404 and "Vraag het pijnteam" in r.json()["detail"]
    r = client.post("/api/v1/enrol", json={"code": "AAAA-AAAA"}, headers={"Accept-Language": "en-GB"})
    assert r.status_code == 404 and "Ask the pain team" in r.json()["detail"]
    r = client.get("/api/v1/me", headers={"Accept-Language": "en"})
    assert r.status_code == 401 and "not signed in" in r.json()["detail"]
    assert "niet aangemeld" in client.get("/api/v1/me").json()["detail"]


def test_litestars_own_refusals_are_translated_too(client, patient):
    _pid, headers = patient
    r = client.put(f"/api/v1/responses/{new_id()}", json={**diary(), "version": "een"}, headers=headers)
    assert r.status_code == 400
    assert r.json()["extra"][0] == {
        "field": "version",
        "error": "moet een geheel getal zijn, niet tekst",
        "code": "field.type",
    }
    r = client.put(f"/api/v1/responses/{new_id()}", json={**diary(), "mood": 3}, headers=headers)
    assert r.status_code == 400 and r.json()["extra"][0]["field"] == "mood"
    assert r.json()["extra"][0]["code"] == "field.unknown"
    r = client.delete("/api/v1/enrol")
    assert r.status_code == 405 and r.json()["detail"] == messages.text("http.method")
