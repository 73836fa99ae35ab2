"""The schema's steps, in the order they run: each a function of a connection (DDL, and the
data a new table starts from). `STEPS` lists them; `migrations` numbers them by their place
in it (1, 2, 3 ...), applies the pending ones and records them. A new step goes at the end.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

import sqlite_utils

from backend.platform.current_response_schema import current_response_by_day, current_response_table
from backend.platform.patient_list_schema import patient_list_columns
from backend.platform.replication import new_generation

Migration = Callable[[sqlite3.Connection], None]


def tables(conn: sqlite3.Connection) -> sqlite_utils.Database:
    """sqlite-utils over the migration's own connection (inside its transaction)."""
    return sqlite_utils.Database(conn, recursive_triggers=False)


def _run(conn: sqlite3.Connection, statements: list[str]) -> None:
    for sql in statements:
        conn.execute(sql)


def _foundation(conn: sqlite3.Connection) -> None:
    _run(
        conn,
        [
            """CREATE TABLE users (
                id INTEGER PRIMARY KEY,
                email TEXT NOT NULL UNIQUE COLLATE NOCASE,
                name TEXT NOT NULL,
                role TEXT NOT NULL CHECK (role IN ('clinician', 'admin')),
                password_hash TEXT NOT NULL,
                created_at TEXT NOT NULL,
                password_changed_at TEXT NOT NULL,
                disabled_at TEXT
            )""",
            """CREATE TABLE sessions (
                id_hash TEXT PRIMARY KEY,
                user_id INTEGER NOT NULL REFERENCES users(id),
                csrf_token TEXT NOT NULL,
                created_at TEXT NOT NULL,
                expires_at TEXT NOT NULL,
                source TEXT
            )""",
            "CREATE INDEX sessions_user ON sessions(user_id)",
            """CREATE TABLE throttle (
                key TEXT PRIMARY KEY,
                failures INTEGER NOT NULL,
                first_failure_at TEXT NOT NULL,
                locked_until TEXT
            )""",
            """CREATE TABLE patients (
                id TEXT PRIMARY KEY,
                display_name TEXT NOT NULL,
                pathway_id TEXT NOT NULL,
                timezone TEXT NOT NULL DEFAULT 'Europe/Amsterdam',
                language TEXT NOT NULL DEFAULT 'nl' CHECK (language IN ('nl', 'en')),
                reminder_time TEXT NOT NULL DEFAULT '20:00',
                anchor_date TEXT NOT NULL,
                enrolled_at TEXT NOT NULL,
                status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'left')),
                thresholds TEXT NOT NULL DEFAULT '{}',
                created_by INTEGER REFERENCES users(id)
            )""",
            "CREATE INDEX patients_pathway ON patients(pathway_id, status)",
            """CREATE TABLE enrolment_codes (
                code_hash TEXT PRIMARY KEY,
                patient_id TEXT NOT NULL REFERENCES patients(id),
                created_at TEXT NOT NULL,
                expires_at TEXT NOT NULL,
                used_at TEXT
            )""",
            "CREATE INDEX enrolment_codes_patient ON enrolment_codes(patient_id)",
            """CREATE TABLE devices (
                token_hash TEXT PRIMARY KEY,
                patient_id TEXT NOT NULL REFERENCES patients(id),
                created_at TEXT NOT NULL,
                last_seen_at TEXT,
                revoked_at TEXT
            )""",
            "CREATE INDEX devices_patient ON devices(patient_id)",
            # A response is never changed: an edit is a newer response for the same
            # questionnaire and local_date (see the current_responses view).
            """CREATE TABLE responses (
                id TEXT PRIMARY KEY,
                patient_id TEXT NOT NULL REFERENCES patients(id),
                questionnaire_id TEXT NOT NULL,
                questionnaire_version INTEGER NOT NULL,
                authored_at TEXT NOT NULL,
                authored_at_client TEXT NOT NULL,
                local_date TEXT NOT NULL,
                task_id INTEGER,
                answers TEXT NOT NULL,
                scores TEXT NOT NULL DEFAULT '{}',
                content_hash TEXT NOT NULL,
                received_at TEXT NOT NULL
            )""",
            "CREATE INDEX responses_day ON responses(patient_id, questionnaire_id, local_date, authored_at)",
            "CREATE INDEX responses_patient_date ON responses(patient_id, local_date)",
            "CREATE INDEX responses_received ON responses(patient_id, received_at)",
            """CREATE VIEW current_responses AS
                SELECT * FROM responses r WHERE NOT EXISTS (
                    SELECT 1 FROM responses n
                    WHERE n.patient_id = r.patient_id
                      AND n.questionnaire_id = r.questionnaire_id
                      AND n.local_date = r.local_date
                      AND (n.authored_at > r.authored_at
                           OR (n.authored_at = r.authored_at AND n.rowid > r.rowid)))""",
            # NEN 7513: who, in which role, for which patient, what, on what, when, from where.
            """CREATE TABLE audit_log (
                id INTEGER PRIMARY KEY,
                at TEXT NOT NULL,
                user_id INTEGER,
                user_email TEXT,
                role TEXT,
                patient_id TEXT,
                action TEXT NOT NULL,
                object TEXT,
                source TEXT
            )""",
            "CREATE INDEX audit_patient ON audit_log(patient_id, at)",
            """CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
               BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END""",
            """CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
               BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END""",
            """CREATE TABLE settings_kv (
                key TEXT PRIMARY KEY,
                value TEXT NOT NULL
            )""",
        ],
    )


def _push(conn: sqlite3.Connection) -> None:
    _run(
        conn,
        [
            # A browser's PushSubscription: a patient's device, or a clinician who opted in
            # for escalations. Never deleted: a dead endpoint is deactivated (history kept).
            """CREATE TABLE push_subscriptions (
                id INTEGER PRIMARY KEY,
                patient_id TEXT REFERENCES patients(id),
                user_id INTEGER REFERENCES users(id),
                endpoint TEXT NOT NULL UNIQUE,
                p256dh TEXT NOT NULL,
                auth TEXT NOT NULL,
                user_agent TEXT,
                created_at TEXT NOT NULL,
                last_success_at TEXT,
                failures INTEGER NOT NULL DEFAULT 0,
                deactivated_at TEXT,
                CHECK ((patient_id IS NULL) <> (user_id IS NULL))
            )""",
            "CREATE INDEX push_subscriptions_patient ON push_subscriptions(patient_id)"
            " WHERE deactivated_at IS NULL",
            "CREATE INDEX push_subscriptions_user ON push_subscriptions(user_id)"
            " WHERE deactivated_at IS NULL",
            # One row per message per device; status moves queued -> sending -> sent | dead
            # (or back to queued for a retry) by compare-and-set updates only.
            """CREATE TABLE push_queue (
                id INTEGER PRIMARY KEY,
                subscription_id INTEGER NOT NULL REFERENCES push_subscriptions(id),
                payload TEXT NOT NULL,
                urgency TEXT NOT NULL
                    CHECK (urgency IN ('very-low', 'low', 'normal', 'high')),
                ttl INTEGER NOT NULL,
                topic TEXT,
                created_at TEXT NOT NULL,
                expires_at TEXT NOT NULL,
                status TEXT NOT NULL DEFAULT 'queued'
                    CHECK (status IN ('queued', 'sending', 'sent', 'dead')),
                attempts INTEGER NOT NULL DEFAULT 0,
                next_attempt_at TEXT NOT NULL,
                claimed_at TEXT,
                claim TEXT,
                sent_at TEXT,
                last_status TEXT
            )""",
            "CREATE INDEX push_queue_due ON push_queue(status, next_attempt_at)",
            "CREATE INDEX push_queue_subscription ON push_queue(subscription_id, status)",
        ],
    )


def _team_seen(conn: sqlite3.Connection) -> None:
    # When the pain team last looked at the patient's reports (shown in the PWA).
    tables(conn)["patients"].add_column("team_seen_at", str)


def _tasks(conn: sqlite3.Connection) -> None:
    _run(
        conn,
        [
            # A patient's pathway materialised (backend/tasks/scheduler.py): one questionnaire for
            # one local date, open from opens_at, due at due_at, answerable until expires_at.
            # reminder_times: the planned pushes (JSON list of UTC times); next_reminder_at is
            # the next one not yet claimed, NULL when none is left or the task is closed.
            """CREATE TABLE tasks (
                id INTEGER PRIMARY KEY,
                patient_id TEXT NOT NULL REFERENCES patients(id),
                questionnaire_id TEXT NOT NULL,
                label TEXT,
                local_date TEXT NOT NULL,
                until_date TEXT NOT NULL,
                opens_at TEXT NOT NULL,
                due_at TEXT NOT NULL,
                expires_at TEXT NOT NULL,
                status TEXT NOT NULL DEFAULT 'open'
                    CHECK (status IN ('open', 'done', 'expired', 'cancelled')),
                reminder_times TEXT NOT NULL DEFAULT '[]',
                reminders_sent INTEGER NOT NULL DEFAULT 0,
                next_reminder_at TEXT,
                reminder_claimed_at TEXT,
                response_id TEXT,
                created_at TEXT NOT NULL,
                UNIQUE (patient_id, questionnaire_id, local_date)
            )""",
            # "Which reminders are due" and "which open tasks are past their window" are
            # index range scans over small partial indexes.
            "CREATE INDEX tasks_next_reminder ON tasks(next_reminder_at) WHERE next_reminder_at IS NOT NULL",
            "CREATE INDEX tasks_open_expiry ON tasks(expires_at) WHERE status = 'open'",
            "CREATE INDEX tasks_patient_open ON tasks(patient_id, opens_at) WHERE status = 'open'",
            # Exactly one process runs the in-process scheduler: the holder of this row.
            """CREATE TABLE scheduler_lease (
                name TEXT PRIMARY KEY,
                holder TEXT NOT NULL,
                expires_at TEXT NOT NULL
            )""",
        ],
    )


def _patient_schedule(conn: sqlite3.Connection) -> None:
    _run(
        conn,
        [
            # How far each patient's tasks are planned, and from what: plan_key names the
            # pathway file, dates, reminder time, zone and quiet hours the tasks came from.
            # next_roll_at: when the scheduler must plan this patient again ('' = now).
            """CREATE TABLE patient_schedule (
                patient_id TEXT PRIMARY KEY REFERENCES patients(id),
                pathway_id TEXT,
                pathway_checksum TEXT,
                plan_key TEXT,
                planned_until TEXT,
                next_roll_at TEXT,
                updated_at TEXT
            )""",
            "CREATE INDEX patient_schedule_roll ON patient_schedule(next_roll_at)"
            " WHERE next_roll_at IS NOT NULL",
            "CREATE INDEX patient_schedule_pathway ON patient_schedule(pathway_id, pathway_checksum)",
            # Whoever creates or changes a patient, the scheduler plans them at its next tick
            # (callers also call scheduler.materialise at once, so tasks show immediately).
            """CREATE TRIGGER patients_schedule_new AFTER INSERT ON patients
               BEGIN
                 INSERT OR IGNORE INTO patient_schedule (patient_id, next_roll_at)
                 VALUES (new.id, '');
               END""",
            """CREATE TRIGGER patients_schedule_changed
               AFTER UPDATE OF pathway_id, anchor_date, reminder_time, timezone, status,
                               enrolled_at ON patients
               BEGIN
                 INSERT OR IGNORE INTO patient_schedule (patient_id, next_roll_at)
                 VALUES (new.id, '');
                 UPDATE patient_schedule SET next_roll_at = '' WHERE patient_id = new.id;
               END""",
            "INSERT OR IGNORE INTO patient_schedule (patient_id, next_roll_at) SELECT id, '' FROM patients",
        ],
    )


def _reminder_log(conn: sqlite3.Connection) -> None:
    _run(
        conn,
        [
            # One row per claimed reminder: what was due when, and when it was claimed
            # (the push queue holds the per-device delivery).
            """CREATE TABLE reminder_log (
                id INTEGER PRIMARY KEY,
                task_id INTEGER NOT NULL REFERENCES tasks(id),
                patient_id TEXT NOT NULL,
                planned_at TEXT NOT NULL,
                claimed_at TEXT NOT NULL,
                pushes INTEGER NOT NULL DEFAULT 0
            )""",
            "CREATE INDEX reminder_log_task ON reminder_log(task_id)",
        ],
    )


def _reminder_log_claimed(conn: sqlite3.Connection) -> None:
    # The daily prune deletes by age: an index range scan, not a scan of the whole log.
    conn.execute("CREATE INDEX reminder_log_claimed ON reminder_log(claimed_at)")


def _alerts(conn: sqlite3.Connection) -> None:
    _run(
        conn,
        [
            # One row per alert episode (backend/alerts/lifecycle.py). status: open -> acknowledged ->
            # resolved (by a clinician, with an outcome); closed = the condition was clear for
            # the quiet period. closed_at also ends the episode of a resolved alert, so a
            # condition that outlives its resolution does not raise a new alert every day.
            """CREATE TABLE alerts (
                id INTEGER PRIMARY KEY,
                patient_id TEXT NOT NULL REFERENCES patients(id),
                rule_id TEXT NOT NULL,
                category TEXT NOT NULL CHECK (category IN
                    ('pain', 'side_effect', 'safety', 'questionnaire', 'adherence')),
                severity TEXT NOT NULL CHECK (severity IN ('urgent', 'high', 'routine')),
                status TEXT NOT NULL DEFAULT 'open' CHECK (status IN
                    ('open', 'acknowledged', 'resolved', 'closed')),
                opened_on TEXT NOT NULL,
                opened_at TEXT NOT NULL,
                updated_at TEXT NOT NULL,
                last_evidence_on TEXT NOT NULL,
                reason TEXT NOT NULL,
                acknowledged_by INTEGER REFERENCES users(id),
                acknowledged_at TEXT,
                assigned_to INTEGER REFERENCES users(id),
                resolved_by INTEGER REFERENCES users(id),
                resolved_at TEXT,
                outcome TEXT CHECK (outcome IS NULL OR outcome IN
                    ('called_patient', 'changed_medication', 'appointment', 'no_action')),
                closed_at TEXT,
                escalated_at TEXT
            )""",
            # At most one live alert per patient and rule.
            "CREATE UNIQUE INDEX alerts_one_live ON alerts(patient_id, rule_id)"
            " WHERE status IN ('open', 'acknowledged')",
            "CREATE INDEX alerts_inbox ON alerts(status, severity, opened_at)",
            "CREATE INDEX alerts_patient ON alerts(patient_id, closed_at, rule_id)",
            "CREATE INDEX alerts_assigned ON alerts(assigned_to, status) WHERE assigned_to IS NOT NULL",
            "CREATE INDEX alerts_unescalated ON alerts(opened_at)"
            " WHERE status = 'open' AND severity = 'urgent' AND escalated_at IS NULL",
            """CREATE TABLE alert_notes (
                id INTEGER PRIMARY KEY,
                alert_id INTEGER NOT NULL REFERENCES alerts(id),
                user_id INTEGER NOT NULL REFERENCES users(id),
                at TEXT NOT NULL,
                text TEXT NOT NULL
            )""",
            "CREATE INDEX alert_notes_alert ON alert_notes(alert_id, at)",
        ],
    )


def _alerts_resurfacing(conn: sqlite3.Connection) -> None:
    # level: the finding's level now; seen_level/seen_on: when the alert opened or a
    # clinician last acknowledged or resolved it - news is measured against that.
    # superseded_by / resurfaced_from: the old alert and the new one it resurfaced as
    # (materially worse, backend/alerts/lifecycle.py).
    alerts = tables(conn)["alerts"]
    alerts.add_column("level", float)
    alerts.add_column("seen_level", float)
    alerts.add_column("seen_on", str)
    alerts.add_column("superseded_by", int)
    alerts.add_column("resurfaced_from", int)


def _alerts_news(conn: sqlite3.Connection) -> None:
    # What made an alert resurface, kept in its reason while new evidence updates the numbers.
    tables(conn)["alerts"].add_column("news", str)


def _patients_list_index(conn: sqlite3.Connection) -> None:
    # The clinic's patient list sorts by status and name and shows the first 200: with this
    # index SQLite reads those 200 in order instead of sorting every patient (and running the
    # per-row subqueries for all of them): 49 ms -> 0.4 ms at 100 000 patients (make bench).
    tables(conn)["patients"].create_index(
        ["status", "display_name"], index_name="patients_list", if_not_exists=True
    )


def _patient_pause(conn: sqlite3.Connection) -> None:
    # The patient's own pause of reminders (a holiday): the last local date without them.
    tables(conn)["patients"].add_column("paused_until", str)


def _push_receipts(conn: sqlite3.Connection) -> None:
    # What the phone's service worker reports for a reminder: shown, opened (no health data:
    # the task and the event). The clinic's patient page counts them per week.
    conn.execute(
        """CREATE TABLE push_receipts (
            id INTEGER PRIMARY KEY,
            patient_id TEXT NOT NULL REFERENCES patients(id),
            task_id INTEGER NOT NULL REFERENCES tasks(id),
            event TEXT NOT NULL CHECK (event IN ('shown', 'opened')),
            at TEXT NOT NULL
        )"""
    )
    conn.execute("CREATE INDEX push_receipts_patient ON push_receipts(patient_id, at)")


def _generation(conn: sqlite3.Connection) -> None:
    # The database's generation id (backend/platform/replication.py): the patient API shows it; a
    # restore or a backup copy gets a new one, and a phone that sees it change sends again
    # what it kept, so answers a restore lost come back.
    new_generation(conn)


def _alert_outcome_referred(conn: sqlite3.Connection) -> None:
    # A fifth outcome, "doorverwezen (huisarts/crisisdienst)": the CHECK on alerts.outcome is
    # widened in place. SQLite allows this edit of the stored schema (a CHECK that every
    # existing row already meets); the schema version bump makes every connection re-read it.
    old = "('called_patient', 'changed_medication', 'appointment', 'no_action')"
    new = "('called_patient', 'changed_medication', 'appointment', 'no_action', 'referred')"
    version = conn.execute("PRAGMA schema_version").fetchone()[0]
    conn.execute("PRAGMA writable_schema = ON")
    try:
        conn.execute(
            "UPDATE sqlite_schema SET sql = replace(sql, ?, ?) WHERE type = 'table' AND name = 'alerts'",
            (old, new),
        )
        conn.execute(f"PRAGMA schema_version = {int(version) + 1}")
    finally:
        conn.execute("PRAGMA writable_schema = OFF")


# In the order they run: a step's number is its place here (migrations.MIGRATIONS).
def _sessions_idle(conn: sqlite3.Connection) -> None:
    # A session also ends after PIJNWACHT_SESSION_IDLE_MINUTES without a request (contract v2).
    tables(conn)["sessions"].add_column("last_seen_at", str)
    conn.execute("UPDATE sessions SET last_seen_at = created_at")
    # A form posted after the session ended, kept for its own clinician until they sign in
    # again (then shown filled in on its page, once); an hour at most.
    conn.execute(
        """CREATE TABLE held_forms (
            token_hash TEXT PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(id),
            page TEXT NOT NULL,
            action TEXT NOT NULL,
            fields TEXT NOT NULL,
            created_at TEXT NOT NULL
        )"""
    )


def _patients_sort_and_discharge(conn: sqlite3.Connection) -> None:
    from backend.platform.formatting import name_sort_key

    patients = tables(conn)["patients"]
    # The patient list's natural name order (backend/patients/roster.py); a row written by
    # plain SQL gets the lower-case name, the enrolment code writes the real key.
    patients.add_column("sort_key", str)
    for pid, name in conn.execute("SELECT id, display_name FROM patients").fetchall():
        conn.execute("UPDATE patients SET sort_key = ? WHERE id = ?", (name_sort_key(name), pid))
    conn.execute(
        """CREATE TRIGGER patients_sort_key AFTER INSERT ON patients WHEN new.sort_key IS NULL
           BEGIN UPDATE patients SET sort_key = lower(new.display_name) WHERE id = new.id; END"""
    )
    conn.execute("DROP INDEX IF EXISTS patients_list")
    conn.execute("CREATE INDEX patients_list ON patients(status, sort_key)")
    conn.execute("CREATE INDEX patients_sorted ON patients(sort_key)")
    # Discharge ("afgemeld", status 'left'): when and why; kept when the patient is resumed.
    patients.add_column("discharged_at", str)
    patients.add_column("discharge_reason", str)
    # The enrolment form's one-time token (post/redirect/get): a reload or a second click
    # finds the patient the first one made instead of making another. The plain code is
    # kept for its result page for an hour, for the clinician who made it.
    conn.execute(
        """CREATE TABLE enrol_forms (
            token_hash TEXT PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(id),
            created_at TEXT NOT NULL,
            patient_id TEXT REFERENCES patients(id),
            code TEXT,
            code_expires_at TEXT
        )"""
    )


def _reminder_log_by_patient(conn: sqlite3.Connection) -> None:
    # The clinic's patient page reads one patient's recent reminders: without an index on the
    # patient that scanned every patient's log rows of the period. The index on task_id served
    # nothing (tasks are never deleted; the join looks tasks up by their own key), so it goes:
    # a claimed reminder still writes one index entry besides the age index.
    _run(
        conn,
        [
            "DROP INDEX reminder_log_task",
            "CREATE INDEX reminder_log_patient ON reminder_log(patient_id, claimed_at)",
        ],
    )


def _alerts_reason_on(conn: sqlite3.Connection) -> None:
    # The day an alert's reason was written for: the rule rewrites the reason at every
    # evaluation that still finds the rise, also on weak evidence that does not move
    # last_evidence_on, so the alert page's chart shows the baseline of this day.
    tables(conn)["alerts"].add_column("reason_on", str)
    conn.execute("UPDATE alerts SET reason_on = last_evidence_on")


def _reminder_log_prune_by_id(conn: sqlite3.Connection) -> None:
    # The daily prune walks the log along its primary key (rows are logged at "now", so ids
    # grow with claimed_at), like the push queue's: the age index served only the prune and
    # cost every reminder of the 20:00 minute one more index entry.
    conn.execute("DROP INDEX reminder_log_claimed")


STEPS: list[tuple[str, Migration]] = [
    ("foundation", _foundation),
    ("push", _push),
    ("team_seen_at", _team_seen),
    ("tasks", _tasks),
    ("patient_schedule", _patient_schedule),
    ("reminder_log", _reminder_log),
    ("reminder_log_claimed", _reminder_log_claimed),
    ("alerts", _alerts),
    ("alerts_resurfacing", _alerts_resurfacing),
    ("alerts_news", _alerts_news),
    ("patients_list_index", _patients_list_index),
    ("patient_pause", _patient_pause),
    ("push_receipts", _push_receipts),
    ("generation", _generation),
    ("alert_outcome_referred", _alert_outcome_referred),
    ("current_response_table", current_response_table),
    ("clinic_sessions_idle_and_held_forms", _sessions_idle),
    ("patients_sort_and_discharge", _patients_sort_and_discharge),
    ("reminder_log_by_patient", _reminder_log_by_patient),
    ("patient_list_columns", patient_list_columns),
    ("alerts_reason_on", _alerts_reason_on),
    ("reminder_log_prune_by_id", _reminder_log_prune_by_id),
    ("current_response_by_day", current_response_by_day),
]
