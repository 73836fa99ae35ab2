"""Settings: one msgspec Struct, filled from PIJNWACHT_* environment variables and CLI flags."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec

from backend.platform.storage import DEFAULT_WAL_AUTOCHECKPOINT

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class SettingsError(Exception):
    """A setting has a value start-up cannot use; the message names the variable."""


class Settings(msgspec.Struct, kw_only=True):
    """Everything the server, the CLI and the scheduler need to know about their surroundings."""

    db: str = "data/pijnwacht.db"
    host: str = "127.0.0.1"
    port: int = 8000
    questionnaires_dir: str = str(PROJECT_ROOT / "questionnaires")
    pwa_dir: str = str(PROJECT_ROOT / "pwa")
    # A folder outside the repository with the clinic's licensed instrument texts (contract v2):
    # <id>.toml files, each the template from questionnaires/ with the real texts.
    licensed_dir: str = ""
    # The public origin the PWA is served from (used in enrolment links and QR codes).
    public_url: str = ""
    # Cookies get the Secure flag: set when served over HTTPS (also behind a TLS proxy).
    secure_cookies: bool = False
    # Trust X-Forwarded-For for the audit log's source address (only behind your own proxy).
    trust_proxy: bool = False
    session_hours: int = 12
    # A clinic session also ends after this many minutes without a request (contract v2).
    session_idle_minutes: int = 30
    login_max_failures: int = 5
    login_lockout_minutes: int = 15
    enrol_max_failures: int = 10
    enrol_code_days: int = 14
    # Responses one questionnaire of one day may get within an hour (a phone re-sending it
    # without end): more are refused with 429 (issue 17). 0: no cap (benchmarks only).
    max_edits_per_hour: int = 100
    # Urgent alerts not acknowledged within this many minutes escalate.
    escalate_after_minutes: int = 60
    # Response targets per severity (backend/alerts/deadlines.py): by when an alert should be seen
    # (urgent in minutes; high and routine in working days, Monday to Friday).
    target_urgent_minutes: int = 60
    target_high_working_days: int = 1
    target_routine_working_days: int = 3
    # Quiet hours (patient's local time): no pushes between these hours.
    quiet_start: str = "22:00"
    quiet_end: str = "08:00"
    # Run the in-process scheduler (APScheduler) beside the web server.
    scheduler: bool = True
    max_body_bytes: int = 2_000_000
    # A connection must send its request line and headers within this many seconds.
    header_timeout_seconds: float = 10.0
    push_contact: str = "mailto:pijnteam@example.org"
    push_timeout_seconds: float = 10.0
    # Plain-http push endpoints on loopback addresses (tests and the loopback push stand-in
    # only); every other endpoint must be https to a public address.
    push_allow_loopback: bool = False
    log_level: str = "info"
    # The identifier system of exported patients (FHIR Patient.identifier.system): the clinic's
    # own namespace for our pseudonymous patient ids. Empty: <public URL>/fhir/sid/patient-id.
    fhir_system: str = ""
    # Pages in the WAL after which a commit checkpoints it (SQLite's default 1000); 0 = never:
    # `pijnwacht replicate` sets 0 for its server, Litestream being the one checkpointer then.
    wal_autocheckpoint: int = DEFAULT_WAL_AUTOCHECKPOINT
    # How often Litestream ships the WAL (a Go duration): the most a crash can lose.
    replica_sync_interval: str = "1s"
    # An S3-compatible store's address for `s3://` replicas (empty: Amazon S3 itself).
    replica_endpoint: str = ""

    @property
    def data_dir(self) -> Path:
        return Path(self.db).resolve().parent

    @property
    def base_url(self) -> str:
        return self.public_url.rstrip("/") or f"http://{self.host}:{self.port}"

    @property
    def fhir_base(self) -> str:
        """The FHIR base of this server: canonical URLs of its Questionnaires live under it."""
        return f"{self.base_url}/fhir"

    @property
    def fhir_patient_system(self) -> str:
        return self.fhir_system or f"{self.fhir_base}/sid/patient-id"


# Words an environment file may use for a yes/no setting besides msgspec's true/false/1/0.
_BOOL_WORDS = {"yes": "true", "on": "true", "no": "false", "off": "false", "": "false"}
_TYPES = {f.name: f.type for f in msgspec.structs.fields(Settings)}
_EXPECTED = {bool: "expected true or false", int: "expected a whole number", float: "expected a number"}
_AT = re.compile(r" - at `\$\.(\w+)`$")


def load_settings(env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Settings from PIJNWACHT_* variables, then explicit overrides (CLI flags) on top.

    msgspec converts the texts (`strict=False`: "8000" to 8000, "true" to True); an error
    names the variable (or the setting, for a flag) and the value."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    raw: dict[str, str] = {}
    for name, typ in _TYPES.items():
        var = f"PIJNWACHT_{name.upper()}"
        if var in env:
            raw[name] = env[var]
            text = env[var] if typ is str else env[var].strip()
            values[name] = _BOOL_WORDS.get(text.lower(), text) if typ is bool else text
    flags = {k: v for k, v in overrides.items() if v is not None}
    values.update(flags)
    try:
        settings = msgspec.convert(values, Settings, strict=False)
    except msgspec.ValidationError as exc:
        found = _AT.search(str(exc))
        name = found.group(1) if found else ""
        why = _EXPECTED.get(_TYPES.get(name), _AT.sub("", str(exc)))
        if name in raw and name not in flags:
            raise SettingsError(f"PIJNWACHT_{name.upper()}={raw[name]!r} is not valid: {why}") from None
        raise SettingsError(f"invalid setting {name}: {why}") from None
    _check(settings)
    return settings


def _check(s: Settings) -> None:
    def bad(name: str, why: str) -> SettingsError:
        return SettingsError(f"PIJNWACHT_{name.upper()} is not valid: {why}")

    if not 0 < s.port < 65536:
        raise bad("port", f"{s.port} is not a TCP port (1-65535)")
    for name in ("quiet_start", "quiet_end"):
        value = getattr(s, name)
        try:
            hh, mm = value.split(":")
            if not (0 <= int(hh) < 24 and 0 <= int(mm) < 60):
                raise ValueError
        except ValueError:
            raise bad(name, f"{value!r} is not a time as HH:MM") from None
    for name in (
        "session_hours",
        "session_idle_minutes",
        "login_max_failures",
        "enrol_max_failures",
        "enrol_code_days",
        "target_urgent_minutes",
        "target_high_working_days",
        "target_routine_working_days",
    ):
        if getattr(s, name) <= 0:
            raise bad(name, "must be a positive number")
    if not 0 < s.header_timeout_seconds <= 300:
        raise bad("header_timeout_seconds", "a number of seconds above 0, at most 300")
    if s.max_edits_per_hour < 0:
        raise bad("max_edits_per_hour", "a number of responses, 0 (no cap) or more")
    if s.wal_autocheckpoint < 0:
        raise bad("wal_autocheckpoint", "a number of pages, 0 or more")
    if not re.fullmatch(r"(\d+(\.\d+)?(ms|s|m|h))+", s.replica_sync_interval):
        why = f"{s.replica_sync_interval!r} is not a duration such as 1s or 500ms"
        raise bad("replica_sync_interval", why)
    if s.log_level.lower() not in ("debug", "info", "warning", "error"):
        raise bad("log_level", "one of debug, info, warning, error")
    if s.licensed_dir and not Path(s.licensed_dir).is_dir():
        raise bad("licensed_dir", f"{s.licensed_dir} is not a folder")
    if not Path(s.questionnaires_dir).is_dir():
        raise bad("questionnaires_dir", f"{s.questionnaires_dir} is not a folder")
