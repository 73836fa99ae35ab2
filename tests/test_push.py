"""Web Push: real encrypted pushes from flush() to a loopback push service."""

from __future__ import annotations

import asyncio
import base64
import email.utils
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from backend.platform import accounts
from backend.platform.settings import Settings
from backend.platform.storage import Database, iso, open_database, parse_iso
from backend.push import keys as vapid
from backend.push import queue as push_queue
from backend.push import sender as push
from backend.push import store as push_store
from backend.push import subscriptions
from backend.push.queue import PushMessage
from tests.conftest import PASSWORD, make_patient
from tests.pushservice import PushService

T0 = datetime(2026, 3, 29, 18, 0, tzinfo=UTC)
REMINDER = PushMessage(
    title="Pijnwacht",
    body="Tijd voor uw dagboek",
    url="/#/today",
    tag="diary-2026-03-29",
    urgency="high",
    ttl=4 * 3600,
)


@pytest.fixture
def db(tmp_path: Path):
    database = open_database(tmp_path / "pijnwacht.db")
    yield database
    database.close()


@pytest.fixture
def push_service():
    with PushService() as service:
        yield service


@pytest.fixture
def keys(tmp_path: Path) -> vapid.VapidKeys:
    return vapid.ensure_vapid_keys(tmp_path)


@pytest.fixture
def settings() -> Settings:
    # The push stand-in listens on plain http on loopback: allowed only with this setting.
    return Settings(
        push_timeout_seconds=0.5, push_contact="mailto:pijnteam@example.org", push_allow_loopback=True
    )


def add_patient(db: Database, patient_id: str) -> None:
    db.write_sync(
        lambda c: make_patient(
            c, patient_id, name=f"Patiënt {patient_id}", enrolled_at="2026-03-01T09:00:00Z"
        )
    )


def subscribe(db: Database, service: PushService, keys: vapid.VapidKeys, patient_id: str) -> str:
    sub = service.new_subscription(keys.public_key_b64)
    db.write_sync(
        lambda c: subscriptions.save_subscription(
            c, patient_id=patient_id, subscription=sub, allow_loopback=True
        )
    )
    return sub["endpoint"]


def remind(db: Database, patient_id: str, now: datetime = T0, message=REMINDER) -> int:
    return db.write_sync(lambda c: push_queue.enqueue(c, patient_id=patient_id, message=message, now=now))


def queue_rows(db: Database) -> list[dict]:
    return [dict(r) for r in db.query("SELECT * FROM push_queue ORDER BY id")]


def subscription(db: Database, endpoint: str) -> dict:
    row = db.query_one("SELECT * FROM push_subscriptions WHERE endpoint = ?", (endpoint,))
    assert row is not None
    return dict(row)


# -- delivery -----------------------------------------------------------------------------


def test_reminder_reaches_every_device_of_the_patient_decrypted_and_without_health_data(
    db, keys, settings, push_service
):
    add_patient(db, "p1")
    add_patient(db, "p2")
    phone = subscribe(db, push_service, keys, "p1")
    tablet = subscribe(db, push_service, keys, "p1")
    other = subscribe(db, push_service, keys, "p2")

    assert remind(db, "p1") == 2
    report = push.flush_sync(db, settings, keys, T0)

    assert report.sent == 2
    for endpoint in (phone, tablet):
        (got,) = push_service.received(endpoint)
        assert got["payload"] == {
            "title": REMINDER.title,
            "body": REMINDER.body,
            "url": REMINDER.url,
            "tag": REMINDER.tag,
        }
        assert got["ttl"] == REMINDER.ttl
        assert got["urgency"] == "high"
        assert got["topic"] == REMINDER.tag
    assert push_service.received(other) == []
    assert push_service.errors == []
    assert {r["status"] for r in queue_rows(db)} == {"sent"}
    assert subscription(db, phone)["last_success_at"] == iso(T0)
    # Nothing is sent twice by a later flush.
    assert push.flush_sync(db, settings, keys, T0 + timedelta(minutes=10)).claimed == 0
    assert len(push_service.received(phone)) == 1


def test_payload_only_carries_the_message_fields(db, keys, settings, push_service):
    add_patient(db, "p1")
    phone = subscribe(db, push_service, keys, "p1")
    remind(
        db,
        "p1",
        message=PushMessage(
            title="Pijnwacht", body="Vragenlijst klaarstaan", url="/#/task/12", tag="task-12"
        ),
    )
    push.flush_sync(db, settings, keys, T0)
    (got,) = push_service.received(phone)
    # Whatever a caller passes, the device gets exactly these four keys.
    assert set(got["payload"]) == {"title", "body", "url", "tag"}
    assert got["payload"]["url"] == "/#/task/12"
    assert got["urgency"] == "normal"


def test_message_past_its_ttl_is_not_sent(db, keys, settings, push_service):
    add_patient(db, "p1")
    phone = subscribe(db, push_service, keys, "p1")
    remind(db, "p1", message=PushMessage(title="Pijnwacht", body="Tijd voor uw dagboek", ttl=60))
    report = push.flush_sync(db, settings, keys, T0 + timedelta(minutes=5))
    assert report.expired == 1
    assert push_service.requests(phone) == []
    assert queue_rows(db)[0]["last_status"] == "expired"


def test_ttl_sent_is_what_remains_of_the_message_lifetime(db, keys, settings, push_service):
    add_patient(db, "p1")
    phone = subscribe(db, push_service, keys, "p1")
    remind(db, "p1")
    push.flush_sync(db, settings, keys, T0 + timedelta(minutes=30))
    assert push_service.received(phone)[0]["ttl"] == REMINDER.ttl - 30 * 60


# -- answers of the push service ----------------------------------------------------------


@pytest.mark.parametrize("status", [404, 410])
def test_gone_subscription_is_deactivated_and_skipped_afterwards(db, keys, settings, push_service, status):
    add_patient(db, "p1")
    gone = subscribe(db, push_service, keys, "p1")
    kept = subscribe(db, push_service, keys, "p1")
    push_service.script(gone, [status])
    remind(db, "p1")

    report = push.flush_sync(db, settings, keys, T0)

    assert report.deactivated == 1 and report.sent == 1
    assert subscription(db, gone)["deactivated_at"] == iso(T0)
    assert subscription(db, kept)["deactivated_at"] is None
    # The next reminder goes only to the device that still exists.
    assert remind(db, "p1", now=T0 + timedelta(days=1)) == 1
    push.flush_sync(db, settings, keys, T0 + timedelta(days=1))
    assert len(push_service.requests(gone)) == 1
    assert len(push_service.received(kept)) == 2


def test_subscribing_again_reactivates_a_deactivated_device(db, keys, settings, push_service):
    add_patient(db, "p1")
    sub = push_service.new_subscription(keys.public_key_b64)
    db.write_sync(
        lambda c: subscriptions.save_subscription(c, patient_id="p1", subscription=sub, allow_loopback=True)
    )
    push_service.script(sub["endpoint"], [410])
    remind(db, "p1")
    push.flush_sync(db, settings, keys, T0)
    assert remind(db, "p1", now=T0 + timedelta(hours=1)) == 0

    db.write_sync(
        lambda c: subscriptions.save_subscription(c, patient_id="p1", subscription=sub, allow_loopback=True)
    )
    assert remind(db, "p1", now=T0 + timedelta(hours=2)) == 1
    push.flush_sync(db, settings, keys, T0 + timedelta(hours=2))
    assert len(push_service.received(sub["endpoint"])) == 1


def test_payload_too_large_is_dropped_and_device_kept(db, keys, settings, push_service):
    add_patient(db, "p1")
    phone = subscribe(db, push_service, keys, "p1")
    push_service.script(phone, [413])
    remind(db, "p1")
    report = push.flush_sync(db, settings, keys, T0)
    assert report.dead == 1 and report.retried == 0
    assert queue_rows(db)[0]["status"] == "dead"
    assert subscription(db, phone)["deactivated_at"] is None
    assert push.flush_sync(db, settings, keys, T0 + timedelta(hours=1)).claimed == 0


def test_429_retry_after_seconds_delays_the_retry(db, keys, settings, push_service):
    add_patient(db, "p1")
    phone = subscribe(db, push_service, keys, "p1")
    push_service.script(phone, [(429, {"Retry-After": "120"})])
    remind(db, "p1")

    assert push.flush_sync(db, settings, keys, T0).retried == 1
    assert queue_rows(db)[0]["next_attempt_at"] == iso(T0 + timedelta(seconds=120))
    push.flush_sync(db, settings, keys, T0 + timedelta(seconds=119))
    assert len(push_service.requests(phone)) == 1
    push.flush_sync(db, settings, keys, T0 + timedelta(seconds=120))
    assert len(push_service.received(phone)) == 1


def test_429_retry_after_http_date_delays_the_retry(db, keys, settings, push_service):
    add_patient(db, "p1")
    phone = subscribe(db, push_service, keys, "p1")
    when = email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=600), usegmt=True)
    push_service.script(phone, [(429, {"Retry-After": when})])
    remind(db, "p1")
    push.flush_sync(db, settings, keys, T0)
    delay = parse_iso(queue_rows(db)[0]["next_attempt_at"]) - T0
    assert timedelta(seconds=595) <= delay <= timedelta(seconds=600)


def test_server_errors_are_retried_with_growing_backoff_then_delivered(db, keys, settings, push_service):
    add_patient(db, "p1")
    phone = subscribe(db, push_service, keys, "p1")
    push_service.script(phone, [500, 503])
    remind(db, "p1")

    push.flush_sync(db, settings, keys, T0)
    first_retry = parse_iso(queue_rows(db)[0]["next_attempt_at"])
    push.flush_sync(db, settings, keys, first_retry - timedelta(seconds=1))
    assert len(push_service.requests(phone)) == 1
    push.flush_sync(db, settings, keys, first_retry)
    second_retry = parse_iso(queue_rows(db)[0]["next_attempt_at"])
    assert second_retry - first_retry > first_retry - T0 > timedelta(0)
    push.flush_sync(db, settings, keys, second_retry)

    assert [r["status"] for r in push_service.requests(phone)] == [500, 503, 201]
    assert queue_rows(db)[0]["status"] == "sent"
    assert subscription(db, phone)["failures"] == 0


def test_a_failing_push_service_is_given_up_after_bounded_attempts(db, keys, settings, push_service):
    add_patient(db, "p1")
    phone = subscribe(db, push_service, keys, "p1")
    push_service.script(phone, [500] * 20)
    remind(db, "p1")
    now = T0
    for _ in range(20):
        push.flush_sync(db, settings, keys, now)
        now += timedelta(hours=1)
    assert len(push_service.requests(phone)) == push.MAX_ATTEMPTS
    assert queue_rows(db)[0]["status"] == "dead"
    # The device itself stays: a service outage says nothing about the subscription.
    assert subscription(db, phone)["deactivated_at"] is None


def test_hanging_endpoint_times_out_without_holding_up_the_others(db, keys, settings, push_service):
    add_patient(db, "p1")
    stuck = subscribe(db, push_service, keys, "p1")
    push_service.script(stuck, ["hang"])
    others = []
    for n in range(30):
        add_patient(db, f"q{n}")
        others.append(subscribe(db, push_service, keys, f"q{n}"))
        remind(db, f"q{n}")
    remind(db, "p1")

    started = time.monotonic()
    report = push.flush_sync(db, settings, keys, T0)
    elapsed = time.monotonic() - started

    assert report.sent == 30 and report.retried == 1
    assert all(len(push_service.received(e)) == 1 for e in others)
    assert elapsed < settings.push_timeout_seconds + 2
    stuck_row = next(r for r in queue_rows(db) if r["status"] != "sent")
    assert stuck_row["status"] == "queued" and stuck_row["last_status"] == "timeout"


def test_flush_keeps_the_event_loop_free(db, keys, settings, push_service):
    add_patient(db, "p1")
    stuck = subscribe(db, push_service, keys, "p1")
    push_service.script(stuck, ["hang"])
    remind(db, "p1")

    async def main() -> int:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        task = asyncio.create_task(ticker())
        await push.flush(db, settings, keys, T0)
        task.cancel()
        return ticks

    # While the push hangs for 0.5 s the loop keeps running other work.
    assert asyncio.run(main()) >= 20


def test_row_left_sending_by_a_crashed_sender_is_sent_later(db, keys, settings, push_service):
    add_patient(db, "p1")
    phone = subscribe(db, push_service, keys, "p1")
    remind(db, "p1")
    # A sender claims the row and dies before sending.
    (claimed, _, _) = db.write_sync(
        lambda c: push_store.claim(
            c, at=iso(T0), stale_before=iso(T0 - push.STALE_AFTER), limit=1000, claim="crashed-sender"
        )
    )
    assert len(claimed) == 1

    # While the claim is fresh, another flush leaves it alone (the sender may be working).
    assert push.flush_sync(db, settings, keys, T0 + timedelta(minutes=1)).claimed == 0
    report = push.flush_sync(db, settings, keys, T0 + push.STALE_AFTER + timedelta(seconds=1))
    assert report.sent == 1
    assert len(push_service.received(phone)) == 1
    assert queue_rows(db)[0]["status"] == "sent"


def test_concurrent_flushes_never_send_a_row_twice(db, keys, settings, push_service):
    endpoints = []
    for n in range(60):
        add_patient(db, f"p{n}")
        endpoints.append(subscribe(db, push_service, keys, f"p{n}"))
        remind(db, f"p{n}")

    reports: list[push.FlushReport] = []

    def run() -> None:
        reports.append(push.flush_sync(db, settings, keys, T0, limit=40))

    async def two_in_one_loop() -> list[push.FlushReport]:
        return list(
            await asyncio.gather(
                push.flush(db, settings, keys, T0, limit=40),
                push.flush(db, settings, keys, T0, limit=40),
            )
        )

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    reports.extend(asyncio.run(two_in_one_loop()))
    for t in threads:
        t.join()

    assert sum(r.sent for r in reports) == 60
    assert [len(push_service.requests(e)) for e in endpoints] == [1] * 60


# -- subscriptions ------------------------------------------------------------------------


def test_removed_subscription_gets_nothing_and_only_its_patient_can_remove_it(
    db, keys, settings, push_service
):
    add_patient(db, "p1")
    add_patient(db, "p2")
    phone = subscribe(db, push_service, keys, "p1")
    remind(db, "p1")
    assert (
        db.write_sync(lambda c: subscriptions.remove_subscription(c, patient_id="p2", endpoint=phone))
        is False
    )
    assert db.write_sync(lambda c: subscriptions.remove_subscription(c, patient_id="p1", endpoint=phone))
    push.flush_sync(db, settings, keys, T0)
    assert push_service.requests(phone) == []
    assert remind(db, "p1", now=T0 + timedelta(hours=1)) == 0


def test_device_passed_on_after_unsubscribing_stops_getting_the_first_patients_reminders(
    db, keys, settings, push_service
):
    add_patient(db, "p1")
    add_patient(db, "p2")
    sub = push_service.new_subscription(keys.public_key_b64)
    save = subscriptions.save_subscription
    first = db.write_sync(lambda c: save(c, patient_id="p1", subscription=sub, allow_loopback=True))
    remind(db, "p1")
    db.write_sync(lambda c: subscriptions.remove_subscription(c, patient_id="p1", endpoint=sub["endpoint"]))
    second = db.write_sync(lambda c: save(c, patient_id="p2", subscription=sub, allow_loopback=True))
    assert first == second
    push.flush_sync(db, settings, keys, T0)
    assert push_service.requests(sub["endpoint"]) == []
    assert remind(db, "p2", now=T0 + timedelta(minutes=1)) == 1


def test_clinician_subscription_receives_escalations(db, keys, settings, push_service):
    uid = db.write_sync(
        lambda c: accounts.add_user(c, email="a@b.nl", name="Dr. A", role="clinician", password=PASSWORD).id
    )
    sub = push_service.new_subscription(keys.public_key_b64)
    db.write_sync(
        lambda c: subscriptions.save_subscription(c, user_id=uid, subscription=sub, allow_loopback=True)
    )
    message = PushMessage(
        title="Pijnwacht",
        body="Er staat een dringende melding open",
        url="/clinic/alerts",
        tag="escalation",
        urgency="high",
    )
    assert db.write_sync(lambda c: push_queue.enqueue(c, user_id=uid, message=message, now=T0)) == 1
    push.flush_sync(db, settings, keys, T0)
    assert push_service.received(sub["endpoint"])[0]["payload"]["url"] == "/clinic/alerts"


def _b64(n: int) -> str:
    return base64.urlsafe_b64encode(bytes(n)).rstrip(b"=").decode()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"endpoint": None}, "endpoint"),
        ({"endpoint": "ftp://push.example.org/x"}, "endpoint"),
        # Plain http into the clinic's network: refused (only loopback, for the stand-in).
        ({"endpoint": "http://10.0.0.5/admin"}, "endpoint"),
        ({"endpoint": "https://"}, "endpoint"),
        ({"keys": None}, "keys"),
        ({"keys": {"auth": _b64(16)}}, "keys.p256dh"),
        ({"keys": {"p256dh": _b64(64), "auth": _b64(16)}}, "keys.p256dh"),
        ({"keys": {"p256dh": "not base64!", "auth": _b64(16)}}, "keys.p256dh"),
        ({"keys": {"p256dh": "BK" + "A" * 85, "auth": _b64(16)}}, "keys.p256dh"),
        ("good-p256dh", "keys.auth"),
    ],
)
def test_bad_subscription_json_is_refused_naming_the_field(db, push_service, change, field):
    add_patient(db, "p1")
    sub = push_service.new_subscription()
    if change == "good-p256dh":
        sub["keys"]["auth"] = _b64(12)
    else:
        sub.update(change)
    with pytest.raises(ValueError, match=rf"^{field}\b"):
        db.write_sync(
            lambda c: subscriptions.save_subscription(
                c, patient_id="p1", subscription=sub, allow_loopback=True
            )
        )
    assert db.query_one("SELECT count(*) FROM push_subscriptions")[0] == 0


@pytest.mark.parametrize(
    "message",
    [
        PushMessage(title="Pijnwacht", body="x", url="https://elsewhere.example/"),
        PushMessage(title="Pijnwacht", body="x", url="//elsewhere.example/"),
        PushMessage(title="Pijnwacht", body="x", urgency="asap"),  # type: ignore[arg-type]
        PushMessage(title="Pijnwacht", body="x" * 4000),
        PushMessage(title="", body="x"),
    ],
)
def test_enqueue_refuses_a_message_a_device_could_not_use(db, message):
    add_patient(db, "p1")
    with pytest.raises(ValueError):
        remind(db, "p1", message=message)


# -- VAPID keys ---------------------------------------------------------------------------


def test_vapid_key_is_private_and_reused_after_restart(tmp_path, db, settings, push_service):
    keys = vapid.ensure_vapid_keys(tmp_path / "data")
    private = tmp_path / "data" / vapid.PRIVATE_KEY_FILE
    assert private.stat().st_mode & 0o777 == 0o600
    raw = base64.urlsafe_b64decode(keys.public_key_b64 + "=" * (-len(keys.public_key_b64) % 4))
    assert len(raw) == 65 and raw[0] == 4 and "=" not in keys.public_key_b64
    assert (tmp_path / "data" / vapid.PUBLIC_KEY_FILE).read_text().strip() == keys.public_key_b64

    add_patient(db, "p1")
    phone = subscribe(db, push_service, keys, "p1")  # the browser subscribed with this key
    restarted = vapid.ensure_vapid_keys(tmp_path / "data")
    assert restarted.public_key_b64 == keys.public_key_b64
    remind(db, "p1")
    push.flush_sync(db, settings, restarted, T0)
    assert len(push_service.received(phone)) == 1
    assert push_service.errors == []


def test_pushes_signed_with_another_key_are_refused_by_the_service(
    tmp_path, db, keys, settings, push_service
):
    # Guards the stand-in itself: it really checks who signed.
    add_patient(db, "p1")
    phone = subscribe(db, push_service, keys, "p1")
    stranger = vapid.ensure_vapid_keys(tmp_path / "other")
    remind(db, "p1")
    report = push.flush_sync(db, settings, stranger, T0)
    assert report.sent == 0
    assert push_service.received(phone) == []
    assert push_service.errors


def test_rows_a_slow_flush_cannot_reach_in_time_go_back_to_the_queue(
    db, keys, settings, push_service, monkeypatch
):
    # A flush stops starting new pushes well before its claim could look abandoned, so no
    # other flush takes over a row this one is still about to send.
    monkeypatch.setattr(push, "STALE_AFTER", timedelta(seconds=2))
    monkeypatch.setattr(push, "CONCURRENCY", 1)
    add_patient(db, "p1")
    stuck = subscribe(db, push_service, keys, "p1")
    push_service.script(stuck, ["hang"])
    remind(db, "p1")
    waiting = []
    for n in range(3):
        add_patient(db, f"q{n}")
        waiting.append(subscribe(db, push_service, keys, f"q{n}"))
        remind(db, f"q{n}")

    report = push.flush_sync(db, settings, keys, T0)

    assert report.released == 3 and report.sent == 0
    rows = {r["subscription_id"]: r for r in queue_rows(db)}
    assert all(r["status"] == "queued" and r["attempts"] == 0 for r in list(rows.values())[1:])
    report = push.flush_sync(db, settings, keys, T0)
    assert report.sent == 3
    assert all(len(push_service.received(e)) == 1 for e in waiting)


def test_finished_rows_are_pruned_after_a_month_pending_ones_never(db, keys, settings, push_service):
    add_patient(db, "p1")
    subscribe(db, push_service, keys, "p1")
    remind(db, "p1", now=T0)
    push.flush_sync(db, settings, keys, T0)
    remind(
        db,
        "p1",
        now=T0 + timedelta(days=1),
        message=PushMessage(title="Pijnwacht", body="Tijd voor uw dagboek", ttl=push_queue.MAX_TTL),
    )
    later = T0 + timedelta(days=31)
    assert push_queue.prune_queue(db, now=later) == 1
    assert [r["status"] for r in queue_rows(db)] == ["queued"]


def test_the_prune_walks_a_month_old_backlog_in_chunks_and_keeps_what_is_pending(
    db, keys, settings, push_service
):
    for n in range(5):
        add_patient(db, f"p{n}")
        subscribe(db, push_service, keys, f"p{n}")
        remind(db, f"p{n}", now=T0)
    assert push.drain_sync(db, settings, keys, T0).sent == 5
    remind(db, "p0", now=T0)  # old and never sent: kept
    for n in range(5):
        remind(db, f"p{n}", now=T0 + timedelta(days=20))
    # Chunks of 2 rows: the five sent ones span three jobs, the pending one is passed over.
    assert push_queue.prune_queue(db, now=T0 + timedelta(days=31), chunk=2) == 5
    assert [r["status"] for r in queue_rows(db)] == ["queued"] * 6
    assert push_queue.prune_queue(db, now=T0 + timedelta(days=31), chunk=2) == 0


def test_drain_sends_a_backlog_larger_than_one_flush(db, keys, settings, push_service):
    endpoints = []
    for n in range(25):
        add_patient(db, f"p{n}")
        endpoints.append(subscribe(db, push_service, keys, f"p{n}"))
        remind(db, f"p{n}")
    assert push.flush_sync(db, settings, keys, T0, limit=10).sent == 10
    report = push.drain_sync(db, settings, keys, T0, limit=10)
    assert report.sent == 15 and report.claimed == 15
    assert [len(push_service.received(e)) for e in endpoints] == [1] * 25
