"""The schema step that keeps "the current response of a day" (a step of `schema.STEPS`)."""

from __future__ import annotations

import sqlite3

# The one definition of "the current response of a day" (issue 14, 17): of the responses of one
# patient, questionnaire and local date, the last written wins (authored_at; the same second:
# the last stored, rowid). Kept at write time in `current_response_ids`, one row per day, by
# triggers on `responses` (every writer - intake, replay, a test's plain INSERT - keeps it in
# the same transaction); `responses` stays the append-only history of every edit. The
# `current_responses` view reads through it: a day edited 30 000 times is one index entry.
CURRENT_RESPONSE_TRIGGERS = [
    # edits / edits_until: how many responses of the day arrived in the hour that ends at
    # edits_until (received_at + 1 h of the first of them); the API refuses more than
    # responses.MAX_EDITS_PER_HOUR (a phone re-sending one day without end, issue 17).
    """CREATE TRIGGER responses_current_insert AFTER INSERT ON responses
       BEGIN
         INSERT INTO current_response_ids
             (patient_id, questionnaire_id, local_date, authored_at, seq, response_id, edits, edits_until)
         VALUES (new.patient_id, new.questionnaire_id, new.local_date, new.authored_at, new.rowid, new.id,
                 1, strftime('%Y-%m-%dT%H:%M:%SZ', new.received_at, '+1 hour'))
         ON CONFLICT (patient_id, questionnaire_id, local_date) DO UPDATE SET
           response_id = CASE WHEN excluded.authored_at > authored_at
                                OR (excluded.authored_at = authored_at AND excluded.seq > seq)
                              THEN excluded.response_id ELSE response_id END,
           seq = CASE WHEN excluded.authored_at > authored_at
                        OR (excluded.authored_at = authored_at AND excluded.seq > seq)
                      THEN excluded.seq ELSE seq END,
           authored_at = max(authored_at, excluded.authored_at),
           edits = CASE WHEN new.received_at >= edits_until THEN 1 ELSE edits + 1 END,
           edits_until = CASE WHEN new.received_at >= edits_until THEN excluded.edits_until
                              ELSE edits_until END;
       END""",
    # Responses are never changed or deleted by the application; should an operator do it,
    # the day is decided again from what is left. A response is current only on its own day
    # (its key): found by the primary key, so no index on response_id is kept up at each edit.
    """CREATE TRIGGER responses_current_delete AFTER DELETE ON responses
       BEGIN
         DELETE FROM current_response_ids WHERE patient_id = old.patient_id
           AND questionnaire_id = old.questionnaire_id AND local_date = old.local_date
           AND response_id = old.id;
         INSERT OR IGNORE INTO current_response_ids
             (patient_id, questionnaire_id, local_date, authored_at, seq, response_id)
         SELECT patient_id, questionnaire_id, local_date, authored_at, rowid, id FROM responses
         WHERE patient_id = old.patient_id AND questionnaire_id = old.questionnaire_id
           AND local_date = old.local_date
         ORDER BY authored_at DESC, rowid DESC LIMIT 1;
       END""",
    """CREATE TRIGGER responses_current_update
       AFTER UPDATE OF id, patient_id, questionnaire_id, local_date, authored_at ON responses
       BEGIN
         DELETE FROM current_response_ids WHERE patient_id = old.patient_id
           AND questionnaire_id = old.questionnaire_id AND local_date = old.local_date
           AND response_id = old.id;
         INSERT OR REPLACE INTO current_response_ids
             (patient_id, questionnaire_id, local_date, authored_at, seq, response_id)
         SELECT patient_id, questionnaire_id, local_date, authored_at, rowid, id FROM responses
         WHERE patient_id = old.patient_id AND questionnaire_id = old.questionnaire_id
           AND local_date = old.local_date
         ORDER BY authored_at DESC, rowid DESC LIMIT 1;
         INSERT OR REPLACE INTO current_response_ids
             (patient_id, questionnaire_id, local_date, authored_at, seq, response_id)
         SELECT patient_id, questionnaire_id, local_date, authored_at, rowid, id FROM responses
         WHERE patient_id = new.patient_id AND questionnaire_id = new.questionnaire_id
           AND local_date = new.local_date
         ORDER BY authored_at DESC, rowid DESC LIMIT 1;
       END""",
]


def current_response_table(conn: sqlite3.Connection) -> None:
    for sql in [
        "DROP VIEW IF EXISTS current_responses",
        """CREATE TABLE current_response_ids (
                patient_id TEXT NOT NULL,
                questionnaire_id TEXT NOT NULL,
                local_date TEXT NOT NULL,
                authored_at TEXT NOT NULL,
                seq INTEGER NOT NULL,
                response_id TEXT NOT NULL,
                edits INTEGER NOT NULL DEFAULT 0,
                edits_until TEXT NOT NULL DEFAULT '',
                PRIMARY KEY (patient_id, questionnaire_id, local_date)
            ) WITHOUT ROWID""",
        "CREATE INDEX current_response_ids_day ON current_response_ids(patient_id, local_date)",
        "CREATE INDEX current_response_ids_response ON current_response_ids(response_id)",
        # The days as they are: the last written of each (the window runs over responses_day).
        """INSERT INTO current_response_ids
                   (patient_id, questionnaire_id, local_date, authored_at, seq, response_id)
               SELECT patient_id, questionnaire_id, local_date, authored_at, seq, id FROM (
                   SELECT patient_id, questionnaire_id, local_date, authored_at, rowid AS seq, id,
                          row_number() OVER (PARTITION BY patient_id, questionnaire_id, local_date
                                             ORDER BY authored_at DESC, rowid DESC) AS n
                   FROM responses)
               WHERE n = 1""",
        *CURRENT_RESPONSE_TRIGGERS,
        # The same columns, in the same order, as the view it replaces (SELECT * FROM
        # responses): every reader of current_responses reads on as before. The key
        # columns come from the small table, so a filter on them uses its indexes.
        """CREATE VIEW current_responses AS
                SELECT r.id, c.patient_id, c.questionnaire_id, r.questionnaire_version,
                       c.authored_at, r.authored_at_client, c.local_date, r.task_id, r.answers,
                       r.scores, r.content_hash, r.received_at
                FROM current_response_ids c JOIN responses r ON r.id = c.response_id""",
    ]:
        conn.execute(sql)


def current_response_by_day(conn: sqlite3.Connection) -> None:
    """The triggers find the current response of a day by its key, and the index on
    response_id goes: every edit of a day moved one entry in it (issue 17)."""
    for sql in [
        "DROP TRIGGER responses_current_insert",
        "DROP TRIGGER responses_current_delete",
        "DROP TRIGGER responses_current_update",
        *CURRENT_RESPONSE_TRIGGERS,
        "DROP INDEX current_response_ids_response",
    ]:
        conn.execute(sql)
