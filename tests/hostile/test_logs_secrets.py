"""No enrolment code, device token or patient search term in any line of the server's log.

A code in a log can be redeemed by whoever reads the log (it reads the patient's whole
diary); a search term is a patient's name. The access log keeps paths only, and the QR
link carries the code in the URL fragment, which the browser never sends.
"""

from __future__ import annotations

import re

import httpx

from tests.conftest import PASSWORD
from tests.server import Server


def test_codes_tokens_and_search_terms_stay_out_of_the_server_log(tmp_path):
    with Server(tmp_path / "pw.db", env={"PIJNWACHT_LOG_LEVEL": "info"}) as server:
        r = server.run(
            "user", "add", "--email", "nurse@example.org", "--name", "Nurse", "--role", "clinician",
            "--password-stdin", input=PASSWORD + "\n",
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        _pid, unused = server.enrol(name="Mevr. Jansen")
        _pid2, used = server.enrol(name="Dhr. Pietersen")
        with httpx.Client(base_url=server.url, timeout=30) as c:
            # An old-style link (a QR code printed before the fragment form) is still opened.
            assert c.get(f"/?code={unused}").status_code == 200
            joined = c.post("/api/v1/enrol", json={"code": used})
            token = joined.json()["token"]
            assert c.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
            form = c.get("/clinic/login").text
            login_csrf = re.search(r'name="login_csrf" value="([^"]+)"', form).group(1)
            c.post(
                "/clinic/login",
                data={"email": "nurse@example.org", "password": PASSWORD, "login_csrf": login_csrf},
            )
            page = c.get("/clinic/patients", params={"q": "Jansen"})
            assert page.status_code == 200 and "Mevr. Jansen" in page.text
            # A new code shown to the nurse: its link has the code after '#'.
            patient_page = c.get(f"/clinic/patients/{_pid}/settings")
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', patient_page.text).group(1)
            shown = c.post(f"/clinic/patients/{_pid}/code", data={"csrf_token": csrf}, follow_redirects=True)
            new_code = re.search(r"[A-Z2-9]{4}-[A-Z2-9]{4}", shown.text).group(0)
            assert f"/#code={new_code}" in shown.text and f"?code={new_code}" not in shown.text
    log = server.log.read_text()
    assert "GET /clinic/patients?… HTTP/1.1" in log  # the access log did run
    for secret in (unused, used, new_code, token, "Jansen"):
        assert secret not in log, f"{secret} is in the server log"


def test_the_cli_prints_the_link_with_the_code_in_the_fragment(tmp_path):
    server = Server(tmp_path / "pw.db")
    r = server.run("enrol", "--name", "P", "--pathway", "chronic-pain")
    assert r.returncode == 0, r.stderr
    code = re.search(r"Enrolment code: (\S+)", r.stdout).group(1)
    assert f"/#code={code}" in r.stdout and "?code=" not in r.stdout
