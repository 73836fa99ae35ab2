"""Access control matrix: every route of the app, tried by every kind of caller.

Callers: anonymous, patient A, patient B, a clinician, an admin, and a device whose token was
revoked. The matrix below says who may pass each route; a route the app has but the matrix
lacks fails the test, so a new page cannot ship without someone deciding who may open it.
"Passing" means the answer is not a refusal (401, 403, or a redirect to the sign-in page).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from litestar.testing import TestClient

from backend.patients import enrolment
from backend.patients import store as patients_store
from backend.platform import accounts
from backend.platform.settings import load_settings
from backend.system import build
from backend.web.app import create_app
from tests.conftest import AMS, PASSWORD, diary, enrol_patient, new_id

pytestmark = pytest.mark.timeout(120)

ANON, A, B, CLIN, ADMIN, REVOKED = "anonymous", "patient A", "patient B", "clinician", "admin", "revoked"
CALLERS = (ANON, A, B, CLIN, ADMIN, REVOKED)
PUBLIC = frozenset(CALLERS)
PATIENT = frozenset({A, B})
CLINIC = frozenset({CLIN, ADMIN})
ADMIN_ONLY = frozenset({ADMIN})

# (method, path with parameters as {}) -> who may pass. Keep it in step with the app.
MATRIX: dict[tuple[str, str], frozenset[str]] = {
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/favicon.ico"): PUBLIC,
    ("GET", "/clinic"): PUBLIC,  # only a redirect to the inbox, which then asks for a session
    # FHIR definitions (no patient data): a server meeting a response's canonical fetches them
    ("GET", "/fhir/Questionnaire"): PUBLIC,
    ("GET", "/fhir/Questionnaire/{}"): PUBLIC,
    # Patient API
    ("POST", "/api/v1/enrol"): PUBLIC,
    ("GET", "/api/v1/me"): PATIENT,
    ("PATCH", "/api/v1/me"): PATIENT,
    ("DELETE", "/api/v1/me/device"): PATIENT,
    ("GET", "/api/v1/me/export"): PATIENT,
    ("GET", "/api/v1/questionnaires"): PATIENT,
    ("GET", "/api/v1/tasks"): PATIENT,
    ("POST", "/api/v1/tasks/{}/snooze"): PATIENT,
    ("PUT", "/api/v1/me/pause"): PATIENT,
    ("DELETE", "/api/v1/me/pause"): PATIENT,
    ("GET", "/api/v1/me/summary"): PATIENT,
    ("PUT", "/api/v1/responses/{}"): PATIENT,
    ("POST", "/api/v1/responses:batch"): PATIENT,
    ("GET", "/api/v1/responses"): PATIENT,
    ("GET", "/api/v1/push/key"): PATIENT,
    ("POST", "/api/v1/push/subscriptions"): PATIENT,
    ("DELETE", "/api/v1/push/subscriptions"): PATIENT,
    ("POST", "/api/v1/push/receipts"): PATIENT,
    # Clinic: sign-in is open, the rest needs a session
    ("GET", "/clinic/login"): PUBLIC,
    ("POST", "/clinic/login"): PUBLIC,
    ("POST", "/clinic/logout"): CLINIC,
    ("GET", "/clinic/patients"): CLINIC,
    ("POST", "/clinic/patients"): CLINIC,
    ("GET", "/clinic/patients/new"): CLINIC,
    ("GET", "/clinic/patients/{}/code"): CLINIC,
    ("POST", "/clinic/patients/{}/code"): CLINIC,
    ("POST", "/clinic/patients/{}/name"): CLINIC,
    ("POST", "/clinic/patients/{}/discharge"): CLINIC,
    ("POST", "/clinic/patients/{}/resume"): CLINIC,
    ("POST", "/clinic/patients/{}/devices/revoke"): CLINIC,
    ("GET", "/clinic/patients/{}/settings"): CLINIC,
    ("POST", "/clinic/patients/{}/settings"): CLINIC,
    ("POST", "/clinic/patients/{}/thresholds"): CLINIC,
    ("GET", "/clinic/password"): CLINIC,
    ("GET", "/clinic/push/key"): CLINIC,
    ("POST", "/clinic/push/subscriptions"): CLINIC,
    ("POST", "/clinic/password"): CLINIC,
    ("GET", "/clinic/users"): ADMIN_ONLY,
    ("POST", "/clinic/users"): ADMIN_ONLY,
    ("POST", "/clinic/users/{}/{}"): ADMIN_ONLY,
    ("GET", "/clinic/audit/{}"): ADMIN_ONLY,
    ("GET", "/clinic/patients/{}/consult"): CLINIC,
    ("GET", "/clinic/patients/{}/consult.csv"): CLINIC,
    ("GET", "/clinic/cohort/{}"): CLINIC,
    ("GET", "/clinic/cohort/{}/cohort.csv"): CLINIC,
    # Areas in progress (contract.md): listed so they are checked the moment they land.
    ("GET", "/clinic/inbox"): CLINIC,
    ("GET", "/clinic/response-times"): CLINIC,
    ("GET", "/clinic/alerts.csv"): CLINIC,
    ("GET", "/clinic/patients/{}"): CLINIC,
    ("GET", "/clinic/alerts/{}"): CLINIC,
    ("POST", "/clinic/alerts/{}/acknowledge"): CLINIC,
    ("POST", "/clinic/alerts/{}/assign"): CLINIC,
    ("POST", "/clinic/alerts/{}/note"): CLINIC,
    ("POST", "/clinic/alerts/{}/resolve"): CLINIC,
    # Files and the API description
    ("GET", "/clinic/static/{}"): PUBLIC,
    ("GET", "/{}"): PUBLIC,
    ("GET", "/"): PUBLIC,
    ("GET", "/schema"): PUBLIC,
    ("GET", "/schema/openapi.json"): PUBLIC,
    ("GET", "/schema/openapi.yml"): PUBLIC,
    ("GET", "/schema/openapi.yaml"): PUBLIC,
    ("GET", "/schema/{}"): PUBLIC,
    ("GET", "/schema/swagger"): PUBLIC,
    ("GET", "/schema/redoc"): PUBLIC,
    ("GET", "/schema/rapidoc"): PUBLIC,
    ("GET", "/schema/elements"): PUBLIC,
    ("GET", "/schema/oauth2-redirect.html"): PUBLIC,
}
# Run these last: they end the caller's session or device.
ENDS_ACCESS = {("POST", "/clinic/logout"), ("DELETE", "/api/v1/me/device")}
PARAM = re.compile(r"\{[^}]*\}")


def shape(path: str) -> str:
    return PARAM.sub("{}", path)


def app_routes(app) -> list[tuple[str, str]]:
    """Every (method, path) the app answers, HEAD and OPTIONS aside (Litestar adds those)."""
    out = []
    for route in app.routes:
        for method in sorted(route.methods - {"HEAD", "OPTIONS"}):
            out.append((method, route.path))
    return out


class World:
    """One app and one database with every kind of caller ready."""

    def __init__(self, client: TestClient, services):
        self.client, self.services = client, services
        self.a_id, a_headers = enrol_patient(services, client, "Mevr. Aarts")
        self.b_id, b_headers = enrol_patient(services, client, "Dhr. Bos")
        # The clinic pages are tried on a third patient, so revoking devices or new codes
        # do not take A's or B's access away halfway through.
        self.victim_id, victim = enrol_patient(services, client, "Mevr. Claes")
        # Severe drowsiness: an urgent alert, so the alert pages have one to show.
        assert (
            client.put(
                f"/api/v1/responses/{new_id()}", json=diary(pain_avg=3, se_drowsiness=3), headers=victim
            ).status_code
            == 201
        )
        alert = services.db.query_one("SELECT id FROM alerts WHERE patient_id = ?", (self.victim_id,))
        self.alert_id = str(alert["id"]) if alert else "1"
        _r, revoked = enrol_patient(services, client, "Dhr. Dekker")
        assert client.delete("/api/v1/me/device", headers=revoked).status_code == 204
        self.b_response = new_id()
        r = client.put(
            f"/api/v1/responses/{self.b_response}", json=diary(note="B's secret note"), headers=b_headers
        )
        assert r.status_code == 201
        self.headers = {A: a_headers, B: b_headers, REVOKED: revoked, ANON: {}, CLIN: {}, ADMIN: {}}
        self.sessions: dict[str, tuple[str, str]] = {}
        for who, role in ((CLIN, "clinician"), (ADMIN, "admin")):
            user = services.db.write_sync(
                lambda conn, role=role: accounts.add_user(
                    conn,
                    email=f"{role}@example.org",
                    name=role,
                    role=role,
                    password=PASSWORD,
                )
            )
            self.sessions[who] = services.db.write_sync(
                lambda conn, user=user: accounts.create_session(conn, user, hours=1, source="test")
            )
            self.sessions[who] = (self.sessions[who][0], self.sessions[who][1].csrf_token)

    def url_for(self, path: str) -> str:
        values = {
            "patient_id": self.victim_id,
            "pathway_id": "chronic-pain",
            "fhir_id": "phq9-v1",
            "response_id": new_id(),
            "path": "nothing-here",
            "alert_id": self.alert_id,
            # A role change without a role: refused as invalid (422), changes nothing.
            "user_id": "1",
            "action": "role",
            "task_id": "1",
        }

        def fill(m: re.Match) -> str:
            name = m.group(0)[1:-1].split(":")[0]
            if name == "file_path":
                return "clinic.css" if path.startswith("/clinic/static") else "index.html"
            assert name in values, f"no test value for path parameter {name!r} in {path}"
            return values[name]

        return PARAM.sub(fill, path)

    def request(self, who: str, method: str, path: str, *, csrf: bool = True):
        self.client.cookies.clear()
        form: dict[str, str] = {}
        if who in self.sessions:
            token, csrf_token = self.sessions[who]
            self.client.cookies.set("pw_session", token, path="/clinic")
            if csrf:
                form["csrf_token"] = csrf_token
        url = self.url_for(path)
        headers = self.headers[who]
        kwargs: dict = {"headers": headers, "follow_redirects": False}
        if (method, path) == ("POST", "/clinic/login"):
            # Its own CSRF pair (cookie + field) comes with the form; the right password
            # passes, whoever sends it: sign-in is open to all.
            page = self.client.get("/clinic/login")
            form = {
                "email": "clinician@example.org",
                "password": PASSWORD,
                "login_csrf": re.search(r'name="login_csrf" value="([^"]+)"', page.text)[1],
            }
        if path.startswith("/api/"):
            body = API_BODIES.get((method, shape(path)))
            if body is not None:
                kwargs["json"] = body
        elif method == "POST":
            kwargs["data"] = form
        return self.client.request(method, url, **kwargs)


API_BODIES = {
    ("POST", "/api/v1/enrol"): {"code": "ZZZZ-ZZZZ"},
    ("PATCH", "/api/v1/me"): {"language": "nl"},
    ("POST", "/api/v1/tasks/{}/snooze"): {"hours": 1},
    ("POST", "/api/v1/push/receipts"): {"tag": "task-1", "event": "shown"},
    ("PUT", "/api/v1/me/pause"): {"until": (datetime.now(AMS).date() + timedelta(days=3)).isoformat()},
    ("PUT", "/api/v1/responses/{}"): diary(),
    ("POST", "/api/v1/responses:batch"): {"responses": []},
    ("POST", "/api/v1/push/subscriptions"): {
        "endpoint": "https://push.example.org/send/abc",
        "keys": {
            "p256dh": "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1Xbjha"
            "zAkj7I99e8QcYP7DkM",
            "auth": "tBHItJI5svbpez7KI4CCXg",
        },
    },
    ("DELETE", "/api/v1/push/subscriptions"): {"endpoint": "https://push.example.org/send/abc"},
}


def refused(r, method: str = "GET", path: str = "") -> bool:
    if (method, path) == ("POST", "/clinic/logout"):
        # Logging out also ends on the sign-in page: it passed if it cleared the cookie.
        return "pw_session=;" not in r.headers.get("set-cookie", "").replace('=""', "=")
    if r.status_code in (401, 403):
        return True
    return r.status_code in (302, 303) and r.headers.get("location", "").split("?")[0].endswith(
        "/clinic/login"
    )


@pytest.fixture
def world(tmp_path) -> Iterator[World]:
    settings = load_settings(env={}, db=str(tmp_path / "matrix.db"), scheduler=False)
    services = build(settings)
    with TestClient(app=create_app(settings, services)) as client:
        yield World(client, services)


def test_every_route_has_a_matrix_entry(world):
    missing = [f"{m} {p}" for m, p in app_routes(world.client.app) if (m, shape(p)) not in MATRIX]
    assert not missing, (
        "routes without an access decision; add them to MATRIX in tests/test_access_matrix.py: "
        + ", ".join(missing)
    )


def test_only_the_allowed_callers_pass_every_route(world):
    routes = sorted(app_routes(world.client.app), key=lambda mp: (mp in ENDS_ACCESS, mp))
    wrong = []
    for method, path in routes:
        allowed = MATRIX.get((method, shape(path)))
        if allowed is None:
            continue  # reported by test_every_route_has_a_matrix_entry
        for who in CALLERS:
            r = world.request(who, method, path)
            no = refused(r, method, path)
            if no == (who in allowed):
                wrong.append(f"{who} {method} {path}: {r.status_code} {'refused' if no else 'passed'}")
            elif who in allowed and r.status_code >= 500:
                wrong.append(f"{who} {method} {path}: server error {r.status_code}")
            if who not in allowed:
                # A refusal carries nothing of any patient's data.
                for secret in ("secret note", "Mevr. Claes", "Dhr. Bos"):
                    assert secret not in r.text, f"{who} {method} {path} shows {secret!r}"
    assert wrong == [], "\n".join(wrong)


def test_every_clinic_post_needs_its_csrf_token(world):
    posts = [
        (m, p)
        for m, p in app_routes(world.client.app)
        if m == "POST" and p.startswith("/clinic") and p != "/clinic/login"
    ]
    assert len(posts) >= 6
    db = world.services.db

    def state():
        return [
            db.query_one(f"SELECT count(*) AS n FROM {t}")["n"]
            for t in ("patients", "users", "sessions", "enrolment_codes")
        ] + [db.query_one("SELECT count(*) AS n FROM devices WHERE revoked_at IS NULL")["n"]]

    before = state()
    for method, path in posts:
        for who in sorted(MATRIX[(method, shape(path))] & CLINIC):
            r = world.request(who, method, path, csrf=False)
            assert r.status_code == 403, f"{who} {method} {path} without CSRF: {r.status_code}"
            assert "verlopen" in r.text
    assert state() == before, "a refused form still changed something"


def test_patient_endpoints_show_only_the_callers_own_data(world):
    """Every patient GET, asked by A, holds nothing of B (id, name, responses, notes)."""
    gets = [p for m, p in app_routes(world.client.app) if m == "GET" and p.startswith("/api/v1")]
    assert "/api/v1/responses" in gets and "/api/v1/me" in gets
    for path in gets:
        r = world.request(A, "GET", path)
        assert r.status_code == 200 or r.status_code == 503, (path, r.status_code)
        for secret in (world.b_id, "Dhr. Bos", world.b_response, "secret note"):
            assert secret not in r.text, f"{path} shows patient B's {secret!r} to patient A"
    mine = world.request(B, "GET", "/api/v1/responses").json()["responses"]
    assert [x["id"] for x in mine] == [world.b_response]


def test_a_patient_token_never_opens_clinic_pages(world):
    """Not with the bearer header, not as a cookie, not for the patient's own id."""
    clinic_gets = [
        p
        for m, p in app_routes(world.client.app)
        if m == "GET"
        and p.startswith("/clinic")
        and p not in ("/clinic", "/clinic/login")
        and not p.startswith("/clinic/static")
    ]
    token = world.headers[A]["Authorization"].split()[1]
    for path in clinic_gets:
        url = PARAM.sub(world.a_id, path) if "patient_id" in path else world.url_for(path)
        world.client.cookies.clear()
        r = world.client.get(url, headers=world.headers[A], follow_redirects=False)
        assert refused(r), (path, r.status_code)
        world.client.cookies.set("pw_session", token, path="/clinic")
        r = world.client.get(url, follow_redirects=False)
        assert refused(r), (path, r.status_code)
        assert "Mevr. Aarts" not in r.text


def test_a_clinic_session_does_not_open_the_patient_api(world):
    world.client.cookies.clear()
    world.client.cookies.set("pw_session", world.sessions[CLIN][0], path="/")
    r = world.client.get("/api/v1/responses")
    assert r.status_code == 401 and "Bearer" in r.json()["detail"]


def test_patient_ids_in_clinic_urls_are_random_not_counted(world):
    services = world.services
    ids = [
        services.db.write_sync(
            lambda conn, i=i: enrolment.create_patient(
                conn,
                display_name=f"P{i}",
                pathway_id="chronic-pain",
                known_pathways=services.pathway_ids,
            )
        )[0].id
        for i in range(40)
    ]
    assert len(set(ids)) == len(ids)
    assert all(len(i) >= 11 for i in ids)
    # Every position after the prefix varies: no counter, no timestamp prefix.
    for pos in range(1, 11):
        assert len({i[pos] for i in ids}) > 5, pos
    assert ids != sorted(ids)
    # A guessed id is simply not there (and not a server error) even for a clinician.
    world.client.cookies.clear()
    world.client.cookies.set("pw_session", world.sessions[CLIN][0], path="/clinic")
    r = world.client.get("/clinic/patients/pzzzzzzzzzz/settings", follow_redirects=False)
    assert r.status_code == 404


def test_a_token_of_a_patient_who_left_is_refused(world):
    world.services.db.write_sync(lambda conn: patients_store.update(conn, world.a_id, {"status": "left"}))
    r = world.request(A, "GET", "/api/v1/me")
    # Discharged: the phone is told the team ended the diary (not "join again with a new code").
    assert r.status_code == 401 and "beëindigd" in r.json()["detail"]
    assert r.headers["X-Pijnwacht-Ended"] == "discharged"
    r = world.request(A, "PUT", "/api/v1/responses/{response_id}")
    assert r.status_code == 401


def test_auth_is_checked_before_the_body(world):
    """An anonymous caller learns nothing from validation errors about the API's inner shape."""
    for who in (ANON, REVOKED):
        r = world.client.put(
            f"/api/v1/responses/{new_id()}",
            content=b"{garbage",
            headers={**world.headers[who], "content-type": "application/json"},
        )
        assert r.status_code == 401, (who, r.status_code, r.text)


# -- sessions and headers ---------------------------------------------------------------
@pytest.mark.parametrize("secure", [True, False])
def test_cookies_are_secure_and_hsts_is_sent_behind_tls(tmp_path, secure):
    """PIJNWACHT_SECURE_COOKIES=true (the documented setting behind a TLS proxy)."""
    settings = load_settings(
        env={"PIJNWACHT_SECURE_COOKIES": str(secure).lower()}, db=str(tmp_path / "tls.db"), scheduler=False
    )
    services = build(settings)
    services.db.write_sync(
        lambda conn: accounts.add_user(
            conn, email="nurse@example.org", name="nurse", role="clinician", password=PASSWORD
        )
    )
    with TestClient(app=create_app(settings, services), base_url="https://testserver.local") as c:
        form = c.get("/clinic/login")
        token = re.search(r'name="login_csrf" value="([^"]+)"', form.text)[1]
        r = c.post(
            "/clinic/login",
            data={"email": "nurse@example.org", "password": PASSWORD, "login_csrf": token},
            follow_redirects=False,
        )
        assert r.status_code in (302, 303)
        cookies = [v.lower() for k, v in r.headers.multi_items() if k == "set-cookie"]
        session_cookie = next(v for v in cookies if v.startswith("pw_session="))
        assert ("; secure" in session_cookie) is secure
        assert "httponly" in session_cookie and "samesite=strict" in session_cookie
        login_cookie = [v for k, v in form.headers.multi_items() if k == "set-cookie"][0].lower()
        assert ("; secure" in login_cookie) is secure
        for path in ("/clinic/login", "/api/v1/me", "/healthz", "/index.html"):
            hsts = c.get(path).headers.get("strict-transport-security")
            assert (hsts is not None and "max-age=31536000" in hsts) is secure, path


def test_answers_for_unknown_paths_and_methods_carry_the_headers(world):
    for method, path in (
        ("GET", "/clinic/nope"),
        ("GET", "/api/v1/nope"),
        ("POST", "/healthz"),
        ("DELETE", "/api/v1/me/export"),
    ):
        r = world.client.request(method, path, follow_redirects=False)
        assert r.status_code in (404, 405), (method, path, r.status_code)
        assert "frame-ancestors 'none'" in r.headers.get("content-security-policy", ""), path
        assert r.headers.get("x-content-type-options") == "nosniff", path
        assert "strict-transport-security" not in r.headers


# -- audit trail (NEN 7513) ---------------------------------------------------------------
# Clinic pages that show no patient's data (forms, the clinic's own accounts).
NO_PATIENT_DATA = {
    "/clinic",
    "/clinic/login",
    "/clinic/patients/new",
    "/clinic/password",
    "/clinic/push/key",
    "/clinic/users",
    "/clinic/static/{}",
}


def test_every_clinic_read_of_patient_data_is_in_the_audit_log(world):
    """Each clinic page or download that shows patient data leaves a row with when, who, in
    which role, which patient, what was done to which object, and from where."""
    db = world.services.db
    pages = [
        p
        for m, p in app_routes(world.client.app)
        if m == "GET" and p.startswith("/clinic") and shape(p) not in NO_PATIENT_DATA
    ]
    assert len(pages) >= 3
    missing = []
    for path in pages:
        for who in sorted(MATRIX.get(("GET", shape(path)), frozenset()) & CLINIC):
            last = db.query_one("SELECT coalesce(max(id), 0) AS n FROM audit_log")["n"]
            r = world.request(who, "GET", path)
            assert r.status_code == 200, (who, path, r.status_code)
            rows = db.query("SELECT * FROM audit_log WHERE id > ?", (last,))
            if not rows:
                missing.append(f"{who} GET {path}")
                continue
            email = f"{'admin' if who == ADMIN else 'clinician'}@example.org"
            for row in rows:
                assert row["at"] and row["action"] and row["source"], dict(row)
                assert row["user_email"] == email and row["role"] in ("clinician", "admin")
                assert row["user_id"] is not None
            if "{patient_id" in path:
                assert world.victim_id in {row["patient_id"] for row in rows}, (path, rows)
    assert not missing, "reads of patient data without an audit row: " + ", ".join(missing)
