"""A phone's PUT that goes well is answered before Litestar's machinery (backend/web/put_path.py):
the answer must be the route's, byte for byte, and every refusal must still be the route's."""

from __future__ import annotations

import sqlite3

import pytest

from backend.patients import enrolment
from backend.web import put_path
from tests.conftest import diary, new_id


def answer(r, rid: str | None = None) -> tuple:
    """What the phone gets: status, headers but the date, the body (`rid` written as ID)."""
    body = r.content.replace(rid.encode(), b"ID") if rid else r.content
    return r.status_code, {k: v for k, v in r.headers.items() if k != "date"}, body


@pytest.fixture
def answered(monkeypatch) -> list[bool]:
    """For each PUT the shell tried: did it answer itself?"""
    tried: list[bool] = []
    real = put_path._stored

    async def spy(*args):
        got = await real(*args)
        tried.append(got is not None)
        return got

    monkeypatch.setattr(put_path, "_stored", spy)
    return tried


def test_a_known_device_s_put_gets_the_route_s_answer_from_the_shell(client, patient, settings, answered):
    pid, headers = patient
    cache = put_path.device_cache(client.app.state)
    cache.clear()
    first, second = new_id(), new_id()
    # One body for all: diary() writes "a minute ago", and sent again across a minute's turn
    # it would be other content (a conflict), not the same response.
    body = diary(pain_avg=4)
    by_route = client.put(f"/api/v1/responses/{first}", json=body, headers=headers)
    assert answered == []  # a device the server had not seen: the route answered, and knows it now
    by_shell = client.put(f"/api/v1/responses/{second}", json=body, headers=headers)
    assert answered == [True]
    assert by_route.status_code == 201 and by_route.json() == {"id": first, "status": "created"}
    assert answer(by_shell, second) == answer(by_route, first)
    assert "no-store" in by_shell.headers["cache-control"]  # the security headers still wrap it
    # Sent again: "duplicate", 200, from either.
    again = client.put(f"/api/v1/responses/{second}", json=body, headers=headers)
    cache.clear()
    again_by_route = client.put(f"/api/v1/responses/{first}", json=body, headers=headers)
    assert answered == [True, True]
    assert again.status_code == 200 and answer(again, second) == answer(again_by_route, first)
    conn = sqlite3.connect(settings.db)
    stored = conn.execute("SELECT id FROM responses WHERE patient_id = ? ORDER BY id", (pid,)).fetchall()
    conn.close()
    assert stored == sorted([(first,), (second,)])


def test_an_alert_is_stored_before_the_shell_answers(client, patient, settings, answered):
    """The alert-before-answer rule holds on the short way too."""
    pid, headers = patient
    client.put(f"/api/v1/responses/{new_id()}", json=diary(pain_avg=2), headers=headers)
    r = client.put(f"/api/v1/responses/{new_id()}", json=diary(pain_avg=2, se_drowsiness=3), headers=headers)
    assert r.status_code == 201 and answered == [True]
    conn = sqlite3.connect(settings.db)
    rules = [row[0] for row in conn.execute("SELECT rule_id FROM alerts WHERE patient_id = ?", (pid,))]
    conn.close()
    assert rules == ["drowsiness_severe"]


CASES = {
    "an answer out of range": lambda rid: {"json": diary(pain_avg=11)},
    "not JSON": lambda rid: {"content": b"{not json", "headers": {"content-type": "application/json"}},
    "not UTF-8": lambda rid: {"content": b'{"a": "\xff"}', "headers": {"content-type": "application/json"}},
    "a version that is no number": lambda rid: {"json": {**diary(), "version": "one"}},
    "a day in another format": lambda rid: {"json": {**diary(), "local_date": "2026-W49-3"}},
    "too large": lambda rid: {"json": {**diary(), "answers": {"pain_avg": 5, "note": "x" * 3_000_000}}},
    "the same id with other content": lambda rid: {"json": diary(pain_avg=9)},
    "the stored id in capitals": lambda rid: {"rid": rid.upper()},  # the stored body itself
}


@pytest.mark.parametrize("case", CASES)
def test_every_refusal_of_a_known_device_is_the_route_s(client, patient, answered, case):
    """The same request refused as an unknown device's (the route alone) and as a known one's
    (the shell tries first, then hands the request on with the body it read)."""
    _pid, headers = patient
    stored, body = new_id(), diary(pain_avg=4)
    first = client.put(f"/api/v1/responses/{stored}", json=body, headers=headers)
    assert first.status_code == 201
    cache = put_path.device_cache(client.app.state)
    known = dict(cache)
    assert known  # the first PUT made the device known
    request = CASES[case](stored)
    if "json" not in request and "content" not in request:
        request["json"] = body  # (built once: diary() says "a minute ago", which may turn)
    rid = request.pop("rid", stored if case == "the same id with other content" else new_id())
    request["headers"] = {**headers, **request.get("headers", {})}
    cache.clear()
    by_route = client.put(f"/api/v1/responses/{rid}", **request)
    cache.update(known)
    tried = client.put(f"/api/v1/responses/{rid}", **request)
    assert answer(tried) == answer(by_route)
    if case == "the stored id in capitals":  # the route normalises it: a duplicate
        assert tried.status_code == 200 and tried.json() == {"id": stored, "status": "duplicate"}
    else:
        assert 400 <= tried.status_code < 500, tried.text
    assert True not in answered  # the shell answered none of them itself


def test_a_device_revoked_since_it_was_known_gets_the_route_s_401(client, patient, services, answered):
    _pid, headers = patient
    assert client.put(f"/api/v1/responses/{new_id()}", json=diary(), headers=headers).status_code == 201
    cache = put_path.device_cache(client.app.state)
    token = headers["Authorization"].split()[1]
    assert token in cache
    services.db.write_sync(lambda conn: enrolment.revoke_token(conn, token))
    r = client.put(f"/api/v1/responses/{new_id()}", json=diary(), headers=headers)
    assert answered == [False]  # the write job found the device gone: nothing stored, the route answered
    assert r.status_code == 401 and "opnieuw aan" in r.json()["detail"]
    assert token not in cache


def test_a_burst_of_one_patient_s_puts_is_judged_once_after_the_last(
    client, patient, services, settings, monkeypatch
):
    """A phone sending one day again and again (8 PUTs at once, in one group commit): each is
    stored and answered, the patient is judged once, after all of them, as a batch of them is,
    and the alert is there when the answers come (issue 17: a burst costs one judgement)."""
    import threading

    from backend.alerts import lifecycle

    pid, headers = patient
    assert client.put(f"/api/v1/responses/{new_id()}", json=diary(), headers=headers).status_code == 201
    judged: list[str] = []
    real = lifecycle.judge_patient
    monkeypatch.setattr(lifecycle, "judge_patient", lambda *a, **k: judged.append(a[1]) or real(*a, **k))
    running, go = threading.Event(), threading.Event()
    held = services.db.write_soon(lambda conn: running.set() or go.wait(10))
    assert running.wait(10)
    statuses: list[int] = []

    def send():
        body = diary(pain_avg=4, se_drowsiness=3)
        statuses.append(client.put(f"/api/v1/responses/{new_id()}", json=body, headers=headers).status_code)

    threads = [threading.Thread(target=send) for _ in range(8)]
    for t in threads:
        t.start()
    for _ in range(1000):
        if services.db.writer._queue.qsize() == 8:
            break
        threading.Event().wait(0.005)
    go.set()
    for t in threads:
        t.join()
    held.result()
    assert statuses == [201] * 8
    assert judged == [pid]
    conn = sqlite3.connect(settings.db)
    rules = [r[0] for r in conn.execute("SELECT rule_id FROM alerts WHERE patient_id = ?", (pid,))]
    conn.close()
    assert rules == ["drowsiness_severe"]


def test_a_known_device_s_conflict_is_refused_after_one_write(client, patient, services, monkeypatch):
    """The shell's write that the route refuses (409 here; a 429 the same) is handed to the
    route, which refuses it without writing again: a broken phone's refused PUTs cost one write."""
    _pid, headers = patient
    rid = new_id()
    assert client.put(f"/api/v1/responses/{rid}", json=diary(pain_avg=4), headers=headers).status_code == 201
    writes: list[str] = []
    real = services.db.write

    async def counted(fn, **kw):
        writes.append("write")
        return await real(fn, **kw)

    monkeypatch.setattr(services.db, "write", counted)
    r = client.put(f"/api/v1/responses/{rid}", json=diary(pain_avg=9), headers=headers)
    assert r.status_code == 409 and "nieuw id" in r.json()["detail"]
    assert writes == ["write"]


def test_the_writer_keeps_its_device_check_until_a_device_or_patient_changes(
    client, patient, other_patient, services, answered, monkeypatch
):
    """The writer checks every PUT's device in its own transaction, and keeps what it read
    until a device changes, or that patient, by this server or by another process (the CLI):
    an alert that opens for one patient does not make every other phone's device read again."""
    pid, headers = patient
    other_pid, other_headers = other_patient
    store = enrolment.store
    reads: list[str] = []
    real = store.device_row

    def counted(conn, token_hash, **kw):
        reads.append(token_hash)
        return real(conn, token_hash, **kw)

    monkeypatch.setattr(store, "device_row", counted)

    def put(h):
        return client.put(f"/api/v1/responses/{new_id()}", json=diary(), headers=h)

    def hashed(h):
        return enrolment._hash(h["Authorization"].split()[1])

    assert put(headers).status_code == 201 and put(other_headers).status_code == 201
    reads.clear()
    assert [put(h).status_code for h in (headers, other_headers, headers)] == [201, 201, 201]
    assert reads == []  # the writer read neither device again
    # The team's news for one patient (team_seen_at cleared, as an opened alert does): that
    # patient's device is read again, the other's is not.
    services.db.write_sync(lambda conn: store.set_team_seen(conn, other_pid, "2026-12-01T10:00:00Z"))
    assert put(headers).status_code == 201 and reads == []
    assert put(other_headers).status_code == 201 and hashed(other_headers) in reads
    reads.clear()
    assert put(other_headers).status_code == 201 and reads == []
    # A patient discharged by this server: their phone is told at once, the other's is not.
    services.db.write_sync(lambda conn: enrolment.discharge(conn, other_pid, "behandeling afgerond"))
    ended = put(other_headers)
    assert ended.status_code == 401 and ended.headers.get("x-pijnwacht-ended") == "discharged"
    assert put(headers).status_code == 201
    # A device revoked by another process (the CLI's own connection): refused too.
    token = headers["Authorization"].split()[1]
    cli = sqlite3.connect(services.settings.db, isolation_level=None)
    enrolment.revoke_token(cli, token)
    cli.close()
    assert put(headers).status_code == 401
    assert answered[-3:] == [False, True, False]  # the shell stored neither refused one


def test_a_failing_detection_never_loses_the_response(
    client, patient, services, answered, monkeypatch, caplog
):
    """Detection that fails (a bug, a bad threshold) rolls back only itself: every PUT, by
    the route or the shell, is stored and answered 201, and the log names the step and the
    patient, never an answer."""
    from backend.alerts import lifecycle

    pid, headers = patient

    def broken(*args, **kwargs):
        raise ValueError("pijn 9 en ernstige sufheid")  # a message that quotes answers

    monkeypatch.setattr(lifecycle, "judge_patient", broken)
    ids = [new_id() for _ in range(3)]
    statuses = [
        client.put(
            f"/api/v1/responses/{rid}", json=diary(pain_avg=9, se_drowsiness=3), headers=headers
        ).status_code
        for rid in ids
    ]
    assert statuses == [201, 201, 201] and answered == [True, True]  # the route, then the shell
    stored = {r[0] for r in services.db.query("SELECT id FROM responses WHERE patient_id = ?", (pid,))}
    assert stored == set(ids)
    failed = [r.getMessage() for r in caplog.records if "evaluate_alerts" in r.getMessage()]
    assert len(failed) == 3 and all(pid in m and "ValueError" in m for m in failed)
    assert not any("sufheid" in r.getMessage() or "pijn 9" in r.getMessage() for r in caplog.records)
    assert not services.db.query("SELECT * FROM alerts WHERE patient_id = ?", (pid,))
