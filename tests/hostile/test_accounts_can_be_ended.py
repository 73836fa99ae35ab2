"""An admin can end a leaver's access from /clinic/users at once, re-role an account or set a
new password; the last admin cannot be removed; a new password must differ from the old."""

from __future__ import annotations

from tests.conftest import PASSWORD, add_clinician, csrf_of, login


class Browser:
    """One person's browser: its own session cookie, sent through the shared test client."""

    def __init__(self, client, email: str, password: str = PASSWORD):
        self.client = client
        client.cookies.clear()
        self.status = login(client, email, password).status_code
        self.session = client.cookies.get("pw_session")

    def _use(self):
        self.client.cookies.clear()
        if self.session:
            self.client.cookies.set("pw_session", self.session, path="/clinic")
        return self.client

    def get(self, path: str, **kw):
        return self._use().get(path, **kw)

    def post(self, path: str, **kw):
        return self._use().post(path, **kw)


def signed_in(client, email: str, password: str = PASSWORD) -> Browser:
    b = Browser(client, email, password)
    assert b.status in (302, 303)
    return b


def sees_patients(c) -> bool:
    return c.get("/clinic/patients", follow_redirects=False).status_code == 200


def test_an_admin_disables_a_leaver_whose_sessions_end_at_once(client, services):
    add_clinician(services, email="admin@example.org", role="admin")
    leaver = add_clinician(services, email="leaver@example.org")
    admin = signed_in(client, "admin@example.org")
    theirs = signed_in(client, "leaver@example.org")
    assert sees_patients(theirs)
    csrf = csrf_of(admin.get("/clinic/users").text)
    r = admin.post(f"/clinic/users/{leaver.id}/disable", data={"csrf_token": csrf}, follow_redirects=False)
    assert r.status_code in (302, 303)
    assert not sees_patients(theirs)
    assert "uitgeschakeld sinds" in admin.get("/clinic/users").text
    assert Browser(client, "leaver@example.org").status == 401
    r = admin.post(f"/clinic/users/{leaver.id}/enable", data={"csrf_token": csrf}, follow_redirects=False)
    assert r.status_code in (302, 303)
    assert sees_patients(signed_in(client, "leaver@example.org"))
    actions = [
        r["action"] for r in services.db.query("SELECT action FROM audit_log WHERE action LIKE 'user_%'")
    ]
    assert actions == ["user_disable", "user_enable"]


def test_a_new_password_from_the_admin_ends_the_accounts_sessions(client, services):
    add_clinician(services, email="admin@example.org", role="admin")
    nurse = add_clinician(services, email="nurse@example.org")
    admin = signed_in(client, "admin@example.org")
    theirs = signed_in(client, "nurse@example.org")
    csrf = csrf_of(admin.get("/clinic/users").text)
    weak = admin.post(f"/clinic/users/{nurse.id}/passwd", data={"csrf_token": csrf, "password": "kort"})
    assert weak.status_code == 422 and sees_patients(theirs)
    r = admin.post(
        f"/clinic/users/{nurse.id}/passwd",
        data={"csrf_token": csrf, "password": "een heel nieuw wachtwoord"},
        follow_redirects=False,
    )
    assert r.status_code in (302, 303)
    assert not sees_patients(theirs)
    assert sees_patients(signed_in(client, "nurse@example.org", "een heel nieuw wachtwoord"))


def test_the_last_admin_is_told_in_dutch_they_cannot_go(client, services):
    admin_user = add_clinician(services, email="admin@example.org", role="admin")
    admin = signed_in(client, "admin@example.org")
    csrf = csrf_of(admin.get("/clinic/users").text)
    for action, data in (("disable", {}), ("role", {"role": "clinician"})):
        r = admin.post(f"/clinic/users/{admin_user.id}/{action}", data={"csrf_token": csrf, **data})
        assert r.status_code == 422 and "laatste actieve beheerder" in r.text
    assert sees_patients(admin)
    assert admin.get("/clinic/users").status_code == 200  # still admin


def test_a_clinician_cannot_change_accounts(client, services, clinician):
    other = add_clinician(services, email="other@example.org")
    r = client.post(f"/clinic/users/{other.id}/disable", data={"csrf_token": clinician})
    assert r.status_code == 403
    assert services.db.query_one("SELECT disabled_at FROM users WHERE id = ?", (other.id,))[0] is None


def test_changing_a_password_to_the_same_one_is_refused(client, services, clinician):
    r = client.post(
        "/clinic/password",
        data={"csrf_token": clinician, "current": PASSWORD, "new": PASSWORD, "again": PASSWORD},
    )
    assert r.status_code == 422 and "anders zijn dan het huidige" in r.text
    assert sees_patients(client)


def test_a_locked_out_nurse_keeps_her_email_and_the_admins_new_password_lets_her_in(
    client, services, settings
):
    add_clinician(services, email="admin@example.org", role="admin")
    nurse = add_clinician(services, email="nurse@example.org")
    admin = signed_in(client, "admin@example.org")
    client.cookies.clear()
    for _ in range(settings.login_max_failures):
        r = login(client, "nurse@example.org", "verkeerd wachtwoord")
        # What she typed as e-mail stays in the form; only the password field is empty.
        assert r.status_code == 401 and 'value="nurse@example.org"' in r.text
    locked = login(client, "nurse@example.org")
    assert locked.status_code == 429 and "Te veel" in locked.text
    assert "beheerder" in locked.text  # who can help, said on the page
    csrf = csrf_of(admin.get("/clinic/users").text)
    r = admin.post(
        f"/clinic/users/{nurse.id}/passwd",
        data={"csrf_token": csrf, "password": "na de blokkade nieuw"},
    )
    assert r.status_code == 200 and "een blokkade is opgeheven" in r.text
    assert sees_patients(signed_in(client, "nurse@example.org", "na de blokkade nieuw"))
