"""NEN 7513: every list or export that shows a patient's data appears in that patient's own
access history (one audit row per patient shown), not as one anonymous row."""

from __future__ import annotations

import re

from backend.platform.words import word
from tests.conftest import add_clinician, diary, enrol_patient, login, new_id

# The admin page says what was done in the clinic's words (backend/platform/words.py, "action").
SHOWN_AS = {word("action", code): code for code in ("list_alerts", "export_alerts", "list_patients")}


def actions_in_history(client, patient_id: str) -> list[str]:
    page = client.get(f"/clinic/audit/{patient_id}")
    assert page.status_code == 200
    return [SHOWN_AS[m] for m in re.findall(r"<td>([^<]+)</td>", page.text) if m in SHOWN_AS]


def test_inbox_alerts_csv_and_patient_list_are_in_each_patients_history(client, services):
    shown = []
    for name in ("Mevr. Jansen", "Dhr. de Vries"):
        pid, headers = enrol_patient(services, client, name=name)
        r = client.put(f"/api/v1/responses/{new_id()}", json=diary(se_drowsiness=3), headers=headers)
        assert r.status_code == 201
        shown.append(pid)
    unseen, _ = enrol_patient(services, client, name="Mevr. Bakker")  # no alert: not in the inbox
    add_clinician(services, email="admin@example.org", role="admin")
    assert login(client, "admin@example.org").status_code in (302, 303)

    assert client.get("/clinic/inbox").status_code == 200
    csv = client.get("/clinic/alerts.csv")
    assert csv.status_code == 200 and shown[0] in csv.text and shown[1] in csv.text
    assert client.get("/clinic/patients", params={"q": "de Vries"}).status_code == 200

    assert sorted(actions_in_history(client, shown[0])) == ["export_alerts", "list_alerts"]
    assert sorted(actions_in_history(client, shown[1])) == ["export_alerts", "list_alerts", "list_patients"]
    assert actions_in_history(client, unseen) == []
    anonymous = services.db.query_one("SELECT count(*) AS n FROM audit_log WHERE patient_id IS NULL")
    assert anonymous["n"] == 0
