"""A demo clinic for the first `make run`: a demo clinician and patients with months of diaries."""

from __future__ import annotations

import secrets

from backend import accounts, enrolment, scheduler, services
from backend.settings import Settings
from backend.storage import utcnow

DEMO_EMAIL = "demo@pijnwacht.local"


def run(settings: Settings, *, if_empty: bool) -> int:
    svc = services.build(settings, push=False)
    try:
        if if_empty and svc.db.query_one("SELECT 1 FROM users LIMIT 1"):
            return 0
        password = "-".join(secrets.token_hex(3) for _ in range(3))

        def create(conn):
            user = accounts.add_user(
                conn, email=DEMO_EMAIL, name="Demo Pijnverpleegkundige", role="admin",
                password=password,
            )
            patient, code, expires = enrolment.create_patient(
                conn, display_name="Demo patiënt (telefoon)", pathway_id="chronic-pain",
                known_pathways=svc.pathway_ids, created_by=user.id,
                code_days=settings.enrol_code_days,
            )
            scheduler.materialise(conn, patient.id, utcnow(), svc.pathways)
            return code

        code = svc.db.write_sync(create)
        filled = fill_demo_cohort(svc)
    finally:
        svc.close()
    print("=" * 72)
    print("Pijnwacht demo clinic (this login is shown only once):")
    print(f"  clinic:   {settings.base_url}/clinic/")
    print(f"  e-mail:   {DEMO_EMAIL}")
    print(f"  password: {password}")
    print(f"  demo patients with diaries: {filled}")
    print(f"  enrol a phone: open {settings.base_url}/?code={code}  (code {code})")
    print("=" * 72, flush=True)
    return 0


def fill_demo_cohort(svc: services.Services, patients: int = 30, days: int = 120) -> int:
    """Demo patients with realistic simulated diaries (and the alerts they raise)."""
    from backend import simulate

    return simulate.fill_demo(svc, patients=patients, days=days)
