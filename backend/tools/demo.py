"""A demo clinic for the first `make run`: a demo clinician and patients with months of diaries."""

from __future__ import annotations

import random
import secrets
import uuid

from backend import intake
from backend import system as services
from backend.patients import enrolment
from backend.platform import accounts
from backend.platform.settings import Settings
from backend.platform.storage import utcnow
from backend.tasks import scheduler

DEMO_EMAIL = "demo@pijnwacht.local"


def run(settings: Settings, *, if_empty: bool, system: services.System | None = None) -> str:
    """Make the demo clinic (unless `if_empty` and there are accounts already) and return what
    to tell the person who started it: the one-time login, or where the clinic is. With
    `system` (the server's own, `serve --demo-if-empty`) it is used and left open."""
    svc = system or services.build(settings, push=False)
    try:
        if if_empty and accounts.accounts_list(svc.db.reader):
            return (
                f"Pijnwacht clinic: {settings.base_url}/clinic/  (demo login lost? a new password:"
                f" .venv/bin/pijnwacht user passwd --email {DEMO_EMAIL})"
            )
        password = "-".join(secrets.token_hex(3) for _ in range(3))

        def create(conn):
            user = accounts.add_user(
                conn,
                email=DEMO_EMAIL,
                name="Demo Pijnverpleegkundige",
                role="admin",
                password=password,
            )
            patient, code, expires = enrolment.create_patient(
                conn,
                display_name="Demo patiënt (telefoon)",
                pathway_id="chronic-pain",
                known_pathways=svc.pathway_ids,
                created_by=user.id,
                code_days=settings.enrol_code_days,
            )
            scheduler.materialise(conn, patient.id, utcnow(), svc.pathways, settings=settings)
            return code

        code = svc.db.write_sync(create)
        filled = fill_demo_cohort(svc)
    finally:
        if system is None:
            svc.close()
    return "\n".join(
        [
            "=" * 72,
            "Pijnwacht demo clinic (this login is shown only once):",
            f"  clinic:   {settings.base_url}/clinic/",
            f"  e-mail:   {DEMO_EMAIL}",
            f"  password: {password}",
            f"  demo patients with diaries: {filled}",
            f"  enrol a phone: open {settings.base_url}/#code={code}  (code {code})",
            "=" * 72,
        ]
    )


DEMO_NAMES = [
    "Mevr. Jansen",
    "Dhr. de Vries",
    "Mevr. Bakker",
    "Dhr. Visser",
    "Mevr. Smit",
    "Dhr. Meijer",
    "Mevr. de Boer",
    "Dhr. Mulder",
    "Mevr. de Groot",
    "Dhr. Bos",
    "Mevr. Vos",
    "Dhr. Peters",
    "Mevr. Hendriks",
    "Dhr. van Leeuwen",
    "Mevr. Dekker",
    "Dhr. Brouwer",
    "Mevr. de Wit",
    "Dhr. Dijkstra",
    "Mevr. Smits",
    "Dhr. de Graaf",
    "Mevr. van der Meer",
    "Dhr. van der Linden",
    "Mevr. Kok",
    "Dhr. Jacobs",
    "Mevr. de Haan",
    "Dhr. Vermeulen",
    "Mevr. van den Berg",
    "Dhr. van der Heijden",
    "Mevr. van Dijk",
    "Dhr. Janssen",
]
DEMO_PATHWAYS = ["chronic-pain", "chronic-pain", "opioid", "treatment-followup", "palliative"]


def fill_demo_cohort(svc: services.System, patients: int = 30, days: int = 120) -> int:
    """Demo patients with simulated diaries sent day by day through the real ingestion path,
    so the alerts they raise open and close as they would have in the clinic."""
    from datetime import UTC, datetime, time, timedelta

    from backend.diary import responses
    from backend.diary.responses import ResponseIn
    from backend.tools import simulate

    today = utcnow().date()
    spec = simulate.CohortSpec(patients=patients, days=days, seed=7, start=today - timedelta(days=days - 1))
    for n, sim in enumerate(simulate.simulate(spec)):
        name = DEMO_NAMES[n % len(DEMO_NAMES)]
        pathway = DEMO_PATHWAYS[n % len(DEMO_PATHWAYS)]

        def create(conn, name=name, pathway=pathway):
            patient, _code, _exp = enrolment.create_patient(
                conn,
                display_name=name,
                pathway_id=pathway,
                known_pathways=svc.pathway_ids,
                anchor_date=spec.start,
                now=datetime.combine(spec.start, time(9), UTC),
            )
            return patient

        patient = svc.db.write_sync(create)
        rng = random.Random(f"demo-wellbeing-{n}")  # its own: the simulated pain stays as it was
        for entry in sim.entries:
            written = datetime.combine(entry.local_date, time(20, 15), patient.zone)
            body = ResponseIn(
                questionnaire="diary",
                version=1,
                authored_at=written.isoformat(),
                local_date=entry.local_date.isoformat(),
                answers={**entry.answers, **wellbeing(rng, entry.answers["pain_avg"])},
            )
            checked = responses.check(str(uuid.uuid4()), body, patient, svc.library, written)
            svc.db.write_sync(
                lambda conn, c=checked, w=written, p=patient: intake.receive(
                    conn, p, [c], library=svc.library, pathways=svc.pathways, now=w
                )
            )
        svc.db.write_sync(
            lambda conn, p=patient: scheduler.materialise(
                conn, p.id, utcnow(), svc.pathways, settings=svc.settings
            )
        )
    return patients


def wellbeing(rng: random.Random, pain: float) -> dict[str, int]:
    """The diary's mood, activity and sleep quality (0-10) for a demo day: lower on worse pain
    days, so the timeline's chart of them has something to show."""

    def scale(centre: float, sd: float) -> int:
        return min(10, max(0, round(rng.gauss(centre, sd))))

    return {
        "mood": scale(7.5 - 0.4 * pain, 1.2),
        "activity": scale(7 - 0.5 * pain, 1.5),
        "sleep_quality": scale(7.5 - 0.45 * pain, 1.4),
    }
