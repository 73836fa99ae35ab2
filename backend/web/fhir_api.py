"""FHIR read API for the questionnaire definitions: `GET /fhir/Questionnaire[/{id}]`.

Public, like the instruments' own publications: these are definitions, no patient data, and
a FHIR server or form filler that meets a response's canonical URL must be able to fetch it
without a clinic account. Read-only; answers are `application/fhir+json`, errors an
OperationOutcome. Licensed instruments without their wording (see `_public`). One resource
per published version (`phq9-v1`); the canonical URL itself
(`<base>/Questionnaire/phq9`, as a response's `questionnaire` carries it before the `|1`)
redirects to its latest version, and `?url=<canonical>[|version]` finds any version.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, Response, get
from litestar.response import Redirect

from backend.diary.definitions import Questionnaire
from backend.diary.fhir_questionnaire import canonical_url, resource_id, to_fhir
from backend.diary.questionnaires import Library
from backend.platform import messages
from backend.platform.storage import iso, utcnow

FHIR_JSON = "application/fhir+json"


def _fhir(body: dict[str, Any], status: int = 200) -> Response[bytes]:
    return Response(msgspec.json.encode(body), status_code=status, media_type=FHIR_JSON)


def _versions(library: Library) -> list[Questionnaire]:
    return [library.by_version[key] for key in sorted(library.by_version)]


def _matches(q: Questionnaire, base: str, url: str | None, version: str | None) -> bool:
    if url is not None:
        url, _, pinned = url.partition("|")
        if url != canonical_url(q, base) or (pinned and pinned != str(q.version)):
            return False
    return version is None or version == str(q.version)


def _public(q: Questionnaire, base: str) -> dict[str, Any]:
    # Public: a licensed instrument's own words are the clinic's under its licence, not ours
    # to publish; its structure, codes and scoring are.
    return to_fhir(q, "nl", base=base, wording=q.licence == "open")


class FhirController(Controller):
    path = "/fhir"
    tags = ["fhir"]

    @get("/Questionnaire", summary="Every published questionnaire version as a searchset Bundle")
    async def search(
        self, request: Request, url: str | None = None, version: str | None = None
    ) -> Response[bytes]:
        base = request.app.state.settings.fhir_base
        found = [q for q in _versions(request.app.state.services.library) if _matches(q, base, url, version)]
        bundle = {
            "resourceType": "Bundle",
            "type": "searchset",
            "timestamp": iso(utcnow()),
            "total": len(found),
            "link": [{"relation": "self", "url": str(request.url)}],
            "entry": [
                {
                    "fullUrl": f"{base}/Questionnaire/{resource_id(q)}",
                    "resource": _public(q, base),
                    "search": {"mode": "match"},
                }
                for q in found
            ],
        }
        return _fhir(bundle)

    @get("/Questionnaire/{fhir_id:str}", summary="One questionnaire version (or its canonical: the latest)")
    async def read(self, request: Request, fhir_id: str) -> Response[bytes] | Redirect:
        library: Library = request.app.state.services.library
        base = request.app.state.settings.fhir_base
        for q in _versions(library):
            if resource_id(q) == fhir_id:
                return _fhir(_public(q, base))
        latest = library.get(fhir_id)
        if latest is not None:
            return Redirect(path=f"/fhir/Questionnaire/{resource_id(latest)}", status_code=302)
        outcome = {
            "resourceType": "OperationOutcome",
            "issue": [
                {
                    "severity": "error",
                    "code": "not-found",
                    "diagnostics": messages.text(
                        "fhir.questionnaire_not_found",
                        messages.pick(None, request.headers.get("accept-language")),
                        id=fhir_id,
                    ),
                }
            ],
        }
        return _fhir(outcome, 404)
