"""The patient list's stored sort columns, a step of `schema.STEPS` (issue 15).

`patients.last_entry` (the latest local date of any answer, '' for none) and
`patients.open_alerts` (live alerts: open or acknowledged) are what the clinic's list
(backend/patients/roster.py) sorts and shows; `patient_counts` holds how many patients each
pathway has in each status, the list's count and pages. They were counted per patient at read time,
for every patient a sort passed; now the triggers below keep them in the same transaction as
the write that changes them, whoever writes (intake, replay, the alert lifecycle, a test's
plain INSERT): `responses` is append-only, so a new answer can only move the last entry
forward; an alert counts while its status is open or acknowledged; a patient counts under
its pathway and status.

Every sort reads in the order of one index, filters first: status (and pathway), then the
sort's column descending, then the natural name key and the id (`roster.listing` pages along
it with a key, never an OFFSET).
"""

from __future__ import annotations

import sqlite3

LIVE = "('open', 'acknowledged')"

TRIGGERS = [
    """CREATE TRIGGER patients_last_entry AFTER INSERT ON responses
       BEGIN UPDATE patients SET last_entry = new.local_date
             WHERE id = new.patient_id AND last_entry < new.local_date; END""",
    f"""CREATE TRIGGER patients_open_alerts_opened AFTER INSERT ON alerts
       WHEN new.status IN {LIVE}
       BEGIN UPDATE patients SET open_alerts = open_alerts + 1 WHERE id = new.patient_id; END""",
    f"""CREATE TRIGGER patients_open_alerts_changed AFTER UPDATE OF status ON alerts
       WHEN (old.status IN {LIVE}) != (new.status IN {LIVE})
       BEGIN UPDATE patients SET open_alerts = open_alerts + (CASE WHEN new.status IN {LIVE}
             THEN 1 ELSE -1 END) WHERE id = new.patient_id; END""",
    f"""CREATE TRIGGER patients_open_alerts_deleted AFTER DELETE ON alerts
       WHEN old.status IN {LIVE}
       BEGIN UPDATE patients SET open_alerts = open_alerts - 1 WHERE id = old.patient_id; END""",
    # The list's counts ("1 234 patiënten", "pagina 3 van 25") per pathway and status.
    """CREATE TRIGGER patient_counts_enrolled AFTER INSERT ON patients
       BEGIN INSERT INTO patient_counts (pathway_id, status, n) VALUES (new.pathway_id, new.status, 1)
             ON CONFLICT (pathway_id, status) DO UPDATE SET n = n + 1; END""",
    """CREATE TRIGGER patient_counts_moved AFTER UPDATE OF status, pathway_id ON patients
       WHEN old.status != new.status OR old.pathway_id != new.pathway_id
       BEGIN UPDATE patient_counts SET n = n - 1 WHERE pathway_id = old.pathway_id AND status = old.status;
             INSERT INTO patient_counts (pathway_id, status, n) VALUES (new.pathway_id, new.status, 1)
             ON CONFLICT (pathway_id, status) DO UPDATE SET n = n + 1; END""",
    """CREATE TRIGGER patient_counts_removed AFTER DELETE ON patients
       BEGIN UPDATE patient_counts SET n = n - 1
             WHERE pathway_id = old.pathway_id AND status = old.status; END""",
]

# One index per sort, with the status (and the pathway) in front: a page is a range of one.
INDEXES = [
    "CREATE INDEX patients_by_name ON patients(status, sort_key, id)",
    "CREATE INDEX patients_by_entry ON patients(status, last_entry DESC, sort_key, id)",
    "CREATE INDEX patients_by_alerts ON patients(status, open_alerts DESC, sort_key, id)",
    "CREATE INDEX patients_pathway_by_name ON patients(pathway_id, status, sort_key, id)",
    "CREATE INDEX patients_pathway_by_entry ON patients(pathway_id, status, last_entry DESC, sort_key, id)",
    "CREATE INDEX patients_pathway_by_alerts ON patients(pathway_id, status, open_alerts DESC, sort_key, id)",
]


def patient_list_columns(conn: sqlite3.Connection) -> None:
    conn.execute("ALTER TABLE patients ADD COLUMN last_entry TEXT NOT NULL DEFAULT ''")
    conn.execute("ALTER TABLE patients ADD COLUMN open_alerts INTEGER NOT NULL DEFAULT 0")
    # The patients there are: the same values the list counted at read time until now
    # (the max along responses_patient_date: one index step a patient).
    conn.execute(
        "UPDATE patients SET"
        " last_entry = coalesce((SELECT max(r.local_date) FROM responses r"
        "  WHERE r.patient_id = patients.id), ''),"
        " open_alerts = (SELECT count(*) FROM alerts a"
        f"  WHERE a.patient_id = patients.id AND a.status IN {LIVE})"
    )
    conn.execute(
        "CREATE TABLE patient_counts (pathway_id TEXT NOT NULL, status TEXT NOT NULL, n INTEGER NOT NULL,"
        " PRIMARY KEY (pathway_id, status)) WITHOUT ROWID"
    )
    conn.execute(
        "INSERT INTO patient_counts (pathway_id, status, n)"
        " SELECT pathway_id, status, count(*) FROM patients GROUP BY pathway_id, status"
    )
    # The new indexes begin with the old ones' columns: those would only cost writes.
    conn.execute("DROP INDEX IF EXISTS patients_list")
    conn.execute("DROP INDEX IF EXISTS patients_pathway")
    for sql in TRIGGERS + INDEXES:
        conn.execute(sql)
