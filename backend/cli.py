"""The `pijnwacht` command: serve, accounts, enrolment, scheduler passes, exports, backups."""

from __future__ import annotations

import argparse
import copy
import gc
import getpass
import json
import logging
import os
import socket
import sqlite3
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from backend.alerts import overrides
from backend.exports.run import add_export_command
from backend.patients import enrolment
from backend.platform import accounts, audit, replication
from backend.platform.files import atomic_path
from backend.platform.replication import new_generation
from backend.platform.settings import Settings, SettingsError, load_settings
from backend.platform.storage import connect, utcnow
from backend.system import build
from backend.tasks import scheduler
from backend.tools import demo
from backend.tools.replay import add_replay_command


def _settings(args: argparse.Namespace, **extra) -> Settings:
    return load_settings(db=getattr(args, "db", None), **extra)


def _fail(message: str, code: int = 2) -> int:
    print(f"pijnwacht: {message}", file=sys.stderr)
    return code


# -- serve --------------------------------------------------------------------------------
def cmd_serve(args: argparse.Namespace) -> int:
    # Litestar and uvicorn are imported by the commands that serve only: they take about a
    # second to import, which every cron `pijnwacht tick` would pay.
    from backend.web.app import create_app

    settings = _settings(args, host=args.host, port=args.port)
    logging.basicConfig(level=settings.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    # `make run`: the demo clinic on first run, its one-time login said last once the server is up.
    system = build(settings)
    banner = demo.run(settings, if_empty=True, system=system) if args.demo_if_empty else ""
    serve(settings, create_app(settings, system), banner=banner)
    return 0


def serve(settings: Settings, app: Any, *, banner: str = "") -> None:
    """Serve `app` with uvicorn as `pijnwacht serve` does (tests/bench too); `banner` said when up."""
    import uvicorn

    from backend.web import httpguard

    # Start-up objects (routes, questionnaires, pathways) never die: out of the collector's
    # sight. And a young-generation pass every 10 000 allocations instead of 700: a diary
    # evaluation makes a few thousand short-lived objects, and collecting them mid-request
    # cost ~20 % of a PUT (make bench). Memory stays flat (reference counting frees them).
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 50, 100)
    print(f"Pijnwacht on {settings.base_url}  (patient app: /   clinic: /clinic/)", flush=True)
    log_config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # no "job executed" every minute
    if banner:
        threading.Thread(target=_say_when_up, args=(settings, banner), daemon=True).start()
    log_config["filters"] = {"no_query": {"()": "backend.web.httpguard.QueryRedactor"}}
    log_config["handlers"]["access"]["filters"] = ["no_query"]
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        # Access logs hold paths only: no bodies, no query strings (QueryRedactor).
        access_log=True,
        log_config=log_config,
        # uvicorn's own proxy handling would take the left-most X-Forwarded-For entry, which
        # the client writes; api.client_address takes the one our proxy appended.
        proxy_headers=False,
        http=httpguard.protocol(settings.header_timeout_seconds),
    )


def _say_when_up(settings: Settings, banner: str, timeout: float = 120.0) -> None:
    """Print `banner` once the server accepts connections, after uvicorn's start-up lines."""
    deadline = time.monotonic() + timeout
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    while time.monotonic() < deadline:
        try:
            socket.create_connection((host, settings.port), timeout=1).close()
        except OSError:
            time.sleep(0.1)
            continue
        time.sleep(0.3)  # uvicorn says "running on" just after it listens
        print(banner, flush=True)
        return


# -- accounts -----------------------------------------------------------------------------
def cmd_user_add(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Password again: ") != password:
            return _fail("the two passwords differ")
    svc = build(settings, push=False)
    try:
        user = svc.db.write_sync(
            lambda conn: accounts.add_user(
                conn, email=args.email, name=args.name, role=args.role, password=password
            )
        )
    except accounts.AccountError as exc:
        return _fail(str(exc))
    finally:
        svc.close()
    print(f"Added {user.role} {user.email} (id {user.id}).")
    return 0


def _read_new_password(args: argparse.Namespace) -> str | None:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    password = getpass.getpass("New password: ")
    if getpass.getpass("New password again: ") != password:
        return None
    return password


def cmd_user_change(args: argparse.Namespace) -> int:
    """user disable | enable | role | passwd: one account change, audited."""
    settings = _settings(args)
    svc = build(settings, push=False)
    try:
        if args.action == "passwd":
            account = accounts.find_account(svc.db.reader, args.email)
            password = _read_new_password(args)
            if password is None:
                return _fail("the two passwords differ")
            new_hash = accounts.new_password_hash(account, password)

            def change(conn):
                accounts.set_password_hash(conn, account.id, new_hash)
                return accounts.find_account(conn, account.email)
        else:
            act = {
                "disable": lambda conn: accounts.disable_user(conn, args.email),
                "enable": lambda conn: accounts.enable_user(conn, args.email),
                "role": lambda conn: accounts.set_role(conn, args.email, args.role),
            }[args.action]

            def change(conn):
                return act(conn)

        def audited(conn):
            account = change(conn)
            accounts.audit_change(conn, None, f"user_{args.action}", account, source="cli")
            return account

        account = svc.db.write_sync(audited)
    except accounts.AccountError as exc:
        return _fail(str(exc))
    finally:
        svc.close()
    done = {
        "disable": "disabled; every session of it has ended",
        "enable": "enabled",
        "role": f"now {account.role}",
        "passwd": "has a new password; every session of it has ended",
    }[args.action]
    print(f"{account.email}: {done}.")
    return 0


def cmd_user_list(args: argparse.Namespace) -> int:
    svc = build(_settings(args), push=False)
    try:
        users = accounts.accounts_list(svc.db.reader)
    finally:
        svc.close()
    if args.json:
        print(json.dumps([{**msgspec.to_builtins(u), "active": u.disabled_at is None} for u in users]))
        return 0
    for u in users:
        state = f"disabled {u.disabled_at[:10]}" if u.disabled_at else "active"
        print(f"{u.email}\t{u.name}\t{u.role}\t{state}")
    return 0


# -- enrolment ----------------------------------------------------------------------------
def cmd_enrol(args: argparse.Namespace) -> int:
    settings = _settings(args)
    svc = build(settings, push=False)

    def create(conn):
        patient, code, expires = enrolment.create_patient(
            conn,
            display_name=args.name,
            pathway_id=args.pathway,
            known_pathways=svc.pathway_ids,
            timezone=args.timezone,
            anchor_date=args.start,  # checked there, against the patient's own today
            reminder_time=args.reminder_time,
            code_days=settings.enrol_code_days,
        )
        scheduler.materialise(conn, patient.id, utcnow(), svc.pathways, settings=settings)
        return patient, code, expires

    try:
        patient, code, expires = svc.db.write_sync(create)
    except enrolment.EnrolmentError as exc:
        return _fail(str(exc))
    finally:
        svc.close()
    if args.json:
        print(json.dumps({"patient_id": patient.id, "code": code, "expires_at": expires}))
    else:
        print(f"Patient {patient.id} ({patient.display_name}) on pathway {patient.pathway_id}.")
        print(f"Enrolment code: {code}  (valid until {expires[:10]})")
        print(f"Link: {settings.base_url}/#code={code}")
    return 0


# -- patient ------------------------------------------------------------------------------
def cmd_patient_thresholds(args: argparse.Namespace) -> int:
    """`pijnwacht patient thresholds ID [--set KEY=VALUE ...] [--clear KEY ...] [--until DATE]`:
    change a patient's detection overrides (audited), then print those stored as JSON."""
    settings = _settings(args)
    svc = build(settings, push=False)

    def change(conn):
        patient = enrolment.get_patient(conn, args.patient_id)
        if patient is None:
            raise overrides.OverrideError("override.no_patient", id=args.patient_id)
        today = patient.local_today()
        for item in args.set or []:
            key, sep, text = item.partition("=")
            if not sep:
                raise overrides.OverrideError("override.syntax", item=item)
            key = key.strip()
            value = overrides.parse_value(key, text)
            until = overrides.parse_until(key, args.until, today)
            overrides.set_override(conn, patient.id, key, value, until, today)
            record(conn, patient.id, "set_threshold", overrides.describe(key, value, until))
        for key in args.clear or []:
            if overrides.clear_override(conn, patient.id, key):
                record(conn, patient.id, "clear_threshold", key)
        return overrides.listing(conn, patient.id, today)

    def record(conn, patient_id: str, action: str, what: str) -> None:
        audit.record(
            conn,
            user_id=None,
            user_email=None,
            role="cli",
            patient_id=patient_id,
            action=action,
            object=what,
            source="cli",
        )

    try:
        listed = svc.db.write_sync(change)
    except overrides.OverrideError as exc:
        return _fail(str(exc))
    finally:
        svc.close()
    print(json.dumps({o.key: msgspec.to_builtins(o) for o in listed}, ensure_ascii=False))
    return 0


def cmd_patient_status(args: argparse.Namespace) -> int:
    """`pijnwacht patient discharge ID [--reason R]` / `patient resume ID` (contract v2):
    stop or restart the monitoring of a patient (audited); every answer and alert is kept."""
    from backend import system as services
    from backend.patients import enrolment
    from backend.platform import audit
    from backend.platform.storage import utcnow
    from backend.tasks import scheduler

    settings = _settings(args)
    svc = services.build(settings, push=False)

    def change(conn):
        if enrolment.get_patient(conn, args.patient_id) is None:
            raise enrolment.NoSuchPatient(args.patient_id)
        if args.patient_command == "discharge":
            patient = enrolment.discharge(conn, args.patient_id, args.reason or "")
        else:
            patient = enrolment.resume(conn, args.patient_id)
        scheduler.materialise(conn, patient.id, utcnow(), svc.pathways, settings=settings)
        audit.record(
            conn,
            user_id=None,
            user_email=None,
            role="cli",
            patient_id=patient.id,
            action=args.patient_command,
            object=None,
            source="cli",
        )
        return patient

    try:
        patient = svc.db.write_sync(change)
    except enrolment.EnrolmentError as exc:
        return _fail(str(exc))
    except enrolment.NoSuchPatient as exc:
        return _fail(str(exc), 1)
    finally:
        svc.close()
    if patient.discharged:
        print(f"Patient {patient.id} is discharged: no more tasks, reminders or silence alerts; data kept.")
    else:
        print(f"Patient {patient.id} is followed again from today.")
    return 0


# -- demo ---------------------------------------------------------------------------------
def cmd_demo(args: argparse.Namespace) -> int:
    """First run of `make run`: a demo clinician (login printed once) and a demo clinic."""
    settings = _settings(args)
    print(demo.run(settings, if_empty=args.if_empty), flush=True)
    return 0


# -- tick ---------------------------------------------------------------------------------
def cmd_tick(args: argparse.Namespace) -> int:
    """`pijnwacht tick`: one tick, regardless of the lease (every step is compare-and-set),
    sending the queued pushes; for cron beside or instead of a running server. The system
    is built as the server builds its own, so the tick runs every pass the server's does.
    Prints the tick's counts as one JSON object."""
    # Here, not at the top: the tick's sender (aiohttp, pywebpush) and APScheduler take about
    # a second to import, which every other command (enrol, backup, ...) would pay.
    from backend.tasks import tick

    settings = _settings(args)
    now = parse_now(args.now)
    system = build(settings)
    try:
        push = tick.sender(system.db, settings, system.vapid) if system.vapid else None
        report = tick.run_tick(system.db, settings, now, system.library, system.pathways, push=push)
    finally:
        system.close()
    print(json.dumps(msgspec.to_builtins(report)))
    return 0


class _BadCopy(Exception):
    """A backup copy that failed its integrity check (it is not moved into place)."""


# -- backup -------------------------------------------------------------------------------
def cmd_backup(args: argparse.Namespace) -> int:
    """SQLite's online backup: consistent while the server runs; the file appears whole or not."""
    settings = _settings(args)
    source_path = Path(settings.db)
    if not source_path.exists():
        return _fail(f"no database at {source_path}")
    target = Path(args.file)
    if target.resolve() == source_path.resolve():
        return _fail("the backup must be another file than the database itself")
    target.parent.mkdir(parents=True, exist_ok=True)
    source = connect(source_path, readonly=True)
    try:
        with atomic_path(target, mode=0o600) as tmp:
            dest = sqlite3.connect(str(tmp))
            try:
                # One step, one read transaction: a stepwise copy starts over whenever the
                # server commits between steps, and on a busy clinic never finishes. WAL lets
                # the server keep writing meanwhile.
                source.backup(dest, pages=-1)
                # The copy is another generation of the data: a server started on it (a restore
                # by copying the file back) tells the phones, which then send what the copy lacks.
                with dest:
                    new_generation(dest)
                check = dest.execute("PRAGMA integrity_check").fetchone()[0]
                dest.execute("PRAGMA journal_mode = DELETE")
            finally:
                dest.close()
            if check != "ok":
                raise _BadCopy(check)
    except _BadCopy as exc:
        return _fail(f"the copy failed its integrity check: {exc}")
    finally:
        source.close()
    print(f"Backed up {source_path} to {target} ({target.stat().st_size} bytes, integrity ok).")
    return 0


def cmd_replicate(args: argparse.Namespace) -> int:
    settings = _settings(args, host=args.host, port=args.port)
    try:
        argv, env = replication.replicate_command(settings, args.to)
    except replication.ReplicationError as exc:
        return _fail(str(exc))
    print(f"Pijnwacht under Litestream: {settings.db} -> {args.to}", flush=True)
    # Litestream takes this process's place (its pid, for systemd) and runs the server as a child.
    os.execve(argv[0], argv, env)
    return 0  # not reached


def cmd_restore(args: argparse.Namespace) -> int:
    settings = _settings(args)
    try:
        report = replication.restore(settings, args.source, args.output, args.timestamp)
    except replication.ReplicationError as exc:
        return _fail(str(exc))
    print(
        f"Restored {report['file']} ({report['bytes']} bytes, integrity ok, {report['responses']} responses,"
        f" last received {report['last_received_at'] or '-'}) in {report['seconds']} s;"
        f" new generation {report['generation']}."
    )
    return 0


def _add_replication_commands(subparsers: Any) -> None:
    """`replicate` and `restore` (backend/platform/replication.py)."""
    p = subparsers.add_parser(
        "replicate",
        help="serve as `serve` does, under Litestream, streaming the WAL to URL",
        description="Serve the PWA, the API and the clinic pages under Litestream, which streams every"
        " change to URL (file:///folder or s3://bucket/path) within the sync interval"
        " (PIJNWACHT_REPLICA_SYNC_INTERVAL, default 1s).",
    )
    p.add_argument("--to", required=True, metavar="URL")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.set_defaults(func=cmd_replicate)

    p = subparsers.add_parser(
        "restore",
        help="make a database file from a Litestream replica or a `pijnwacht backup` copy",
        description="Restore the latest state (or the state at --timestamp) of a replica URL, or a"
        " backup copy, into a NEW file -o FILE; it gets a new generation id, so phones send again"
        " what the restore lost.",
    )
    p.add_argument("--from", dest="source", required=True, metavar="URL|FILE")
    p.add_argument("-o", "--output", required=True, metavar="FILE")
    p.add_argument("--timestamp", metavar="ISO-8601", help="e.g. 2026-03-29T18:00:00Z")
    p.set_defaults(func=cmd_restore)


# -- parser -------------------------------------------------------------------------------
def parse_now(text: str | None) -> datetime:
    if not text:
        return datetime.now(UTC)
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError(f"--now {text!r} needs a UTC offset, e.g. 2026-03-29T18:00:00Z")
    return value.astimezone(UTC)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pijnwacht", description=__doc__)
    parser.add_argument("--db", help="database file (default: $PIJNWACHT_DB or data/pijnwacht.db)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="serve the PWA, the API and the clinic pages")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument(
        "--demo-if-empty",
        action="store_true",
        help="first run (`make run`): make the demo clinic if there are no accounts, say its login last",
    )
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("user", help="clinician accounts")
    usub = p.add_subparsers(dest="user_command", required=True)
    p = usub.add_parser("add", help="add a clinician or admin account")
    p.add_argument("--email", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--role", choices=["clinician", "admin"], default="clinician")
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    p.set_defaults(func=cmd_user_add)
    for action, text in (
        ("disable", "disable an account: no sign-in, every session ends at once"),
        ("enable", "enable a disabled account again"),
        ("passwd", "set a new password (a lost one too); every session of the account ends"),
        ("role", "make an account clinician or admin"),
    ):
        p = usub.add_parser(action, help=text)
        p.add_argument("--email", required=True)
        if action == "passwd":
            p.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
        if action == "role":
            p.add_argument("--role", choices=["clinician", "admin"], required=True)
        p.set_defaults(func=cmd_user_change, action=action)
    p = usub.add_parser("list", help="every account, disabled ones too")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_user_list)

    p = sub.add_parser("enrol", help="enrol a patient and print a one-time code")
    p.add_argument("--name", required=True, help="display name or pseudonym (no BSN)")
    p.add_argument("--pathway", required=True)
    p.add_argument("--timezone", default="Europe/Amsterdam")
    p.add_argument("--start", help="anchor date YYYY-MM-DD (enrolment, treatment or surgery)")
    p.add_argument("--reminder-time", default="20:00")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_enrol)

    p = sub.add_parser("patient", help="a patient's settings")
    psub = p.add_subparsers(dest="patient_command", required=True)
    p = psub.add_parser(
        "thresholds",
        help="per-patient detection overrides (audited): set, clear, list",
        description="Without --set or --clear: list the patient's overrides. An override holds"
        " for good, or with --until through that date (then it lapses by itself);"
        " expected_pain_level needs --until.",
    )
    p.add_argument("patient_id", metavar="ID")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="e.g. expected_pain_level=6")
    p.add_argument("--until", metavar="YYYY-MM-DD", help="last day the --set values hold")
    p.add_argument("--clear", action="append", metavar="KEY", help="back to the pathway's value")
    p.set_defaults(func=cmd_patient_thresholds)
    p = psub.add_parser(
        "discharge",
        help="stop monitoring a patient: no tasks, reminders or silence alerts; data kept (audited)",
    )
    p.add_argument("patient_id", metavar="ID")
    p.add_argument("--reason", help="why, e.g. 'behandeling afgerond' (at most 200 characters)")
    p.set_defaults(func=cmd_patient_status)
    p = psub.add_parser("resume", help="follow a discharged patient again from today (audited)")
    p.add_argument("patient_id", metavar="ID")
    p.set_defaults(func=cmd_patient_status)

    p = sub.add_parser("demo", help="create a demo clinician and demo patients")
    p.add_argument("--if-empty", action="store_true", help="only when there are no accounts yet")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser(
        "tick",
        help="one scheduler tick (plan, expire, claim, escalate, nightly sweep, send), then exit",
        description="One tick as of --now (default: now), every pass the server's own tick runs:"
        " safe from cron and beside a running server; a reminder is never sent twice.",
    )
    p.add_argument("--now", metavar="ISO-8601", help="e.g. 2026-03-29T18:00:00Z")
    p.set_defaults(func=cmd_tick)

    p = sub.add_parser("backup", help="online backup of the database to FILE")
    p.add_argument("file")
    p.set_defaults(func=cmd_backup)

    # -- the commands of exports, replay and replication --
    add_export_command(sub)
    add_replay_command(sub)
    _add_replication_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except SettingsError as exc:
        return _fail(str(exc))
    except ValueError as exc:
        return _fail(str(exc))
    except sqlite3.OperationalError as exc:
        # A read-only volume or folder, a full disk: say what to check, not a traceback.
        return _fail(
            f"cannot use the database: {exc}. Check that its folder is writable (SQLite keeps"
            " the -wal and -shm files beside it) and that the disk is not full.",
            1,
        )


if __name__ == "__main__":
    sys.exit(main())
