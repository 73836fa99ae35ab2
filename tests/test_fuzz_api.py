"""Fuzzing the patient API from its own OpenAPI document (schemathesis, positive and negative).

Every /api/v1 operation gets generated requests, valid and invalid, sent as an enrolled
patient (bearer header) to the real app on a real SQLite file. Whatever comes in: no 5xx,
every refusal is JSON with a `detail` a person can act on, and every answer matches the
schema the app publishes (status codes, content types, bodies).

Not checked: that every schema-valid request is accepted (schemathesis' positive_data_acceptance).
Whether a response can be stored depends on the questionnaire definitions, the patient's
time zone and today's date (a diary day may be 14 days late, not 15); the API answers such
requests with 422 naming each field, which is what we check instead.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import CheckContext
from schemathesis.specs.openapi.checks import positive_data_acceptance

from backend.patients import enrolment

pytestmark = pytest.mark.timeout(180)

MAX_EXAMPLES = 25


class Device:
    """The patient's current token; renewed when a fuzzed request signs the device out."""

    headers: dict[str, str] = {}


@schemathesis.check
def refusals_say_what_is_wrong(ctx: CheckContext, response, case) -> bool | None:
    """Every 4xx of the API is JSON {"status_code", "detail"} with a non-empty detail."""
    if not 400 <= response.status_code < 500:
        return None
    content_type = response.headers.get("content-type", [""])[0]
    assert content_type.startswith("application/json"), f"{response.status_code} is not JSON"
    body = response.json()
    assert isinstance(body, dict) and isinstance(body.get("detail"), str), body
    assert len(body["detail"].strip()) >= 10, f"detail too short to act on: {body['detail']!r}"
    assert body.get("status_code") == response.status_code, body
    return True


def new_device(services) -> dict[str, str]:
    """A fresh device token, straight from the database: fuzzing /enrol soon trips its throttle."""

    def make(conn):
        patient, code, _ = enrolment.create_patient(
            conn,
            display_name="Mevr. Fuzz",
            pathway_id="chronic-pain",
            known_pathways=services.pathway_ids,
        )
        return enrolment.redeem_code(conn, code)[1]

    return {"Authorization": f"Bearer {services.db.write_sync(make)}"}


def test_patient_api_survives_fuzzing(client, services):
    Device.headers = new_device(services)
    schema = schemathesis.openapi.from_asgi("/schema/openapi.json", client.app)
    schema = schema.include(path_regex=r"^/api/v1/")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 12, [f"{op.method} {op.path}" for op in operations]
    failures: list[str] = []
    tried = 0
    for op in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=op.as_strategy(generation_mode=mode))
            @settings(
                max_examples=MAX_EXAMPLES,
                deadline=None,
                derandomize=True,
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            def send(case):
                nonlocal tried
                tried += 1
                response = case.call(headers=Device.headers)
                case.validate_response(
                    response,
                    headers=Device.headers,
                    additional_checks=[refusals_say_what_is_wrong],
                    excluded_checks=[positive_data_acceptance],
                )
                if (case.method.upper(), case.path) == ("DELETE", "/api/v1/me/device") and (
                    response.status_code == 204
                ):
                    Device.headers = new_device(services)

            try:
                send()
            except Unsatisfiable:
                pass  # nothing to make invalid: the operation takes no input
            except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - reported together below
                failures.append(f"--- {op.method.upper()} {op.path} ({mode.value}):\n{exc}")
    assert not failures, f"{len(failures)} operations failed:\n" + "\n".join(failures)
    assert tried >= len(operations) * 2 * 5
