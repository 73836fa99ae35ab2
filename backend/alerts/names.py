"""What the clinic calls an alert's rule and its status: "ernstige bijwerking: misselijkheid", never
`side_effect_severe.se_nausea`; "veiligheidssignaal: PHQ-9 vraag 9", never `safety.phq9_9`.

Rule ids stay in the database, the CSV and `replay`; every page shows these names.
"""

from __future__ import annotations

from typing import Any

from backend.platform.messages import DEFAULT
from backend.platform.words import word


def _questionnaire(library: Any, qid: str) -> Any:
    return library.get(qid) if library is not None else None


def _short(q: Any, lang: str) -> str:
    text = q.short_title or q.title
    return text.get(lang, text.get(DEFAULT, q.id))


def rule_name(rule_id: str, library: Any = None, lang: str = DEFAULT) -> str:
    """The rule behind an alert in the clinic's words."""
    kind, _, rest = rule_id.partition(".")
    if kind in ("side_effect_severe", "side_effect_persistent"):
        return word("rule", kind, lang, item=word("side_effect", rest, lang))
    if kind == "safety":
        return word("rule", kind, lang, item=item_name(library, rest, lang))
    if kind == "questionnaire":
        qid, _, score_id = rest.partition(".")
        q = _questionnaire(library, qid)
        if q is None:
            return word("rule", kind, lang, item=qid)
        score = next((s for s in q.scores if s.id == score_id), None)
        label = score.label.get(lang, score.label.get(DEFAULT, "")) if score else ""
        return word("rule", kind, lang, item=f"{_short(q, lang)} {label}".strip())
    return word("rule", rule_id, lang) if kind == rule_id else rule_id


def status_name(a: Any, lang: str = DEFAULT) -> str:
    """An alert's status as the clinic reads it (`a`: an alerts row): one that closed by itself
    says whether a clinician had seen it, one that resurfaced says so."""
    if a["superseded_by"]:
        again = word("status", "superseded", lang)
        return again if a["status"] == "closed" else f"{word('status', a['status'], lang)}; {again}"
    if a["status"] == "closed" and not a["acknowledged_at"]:
        return word("status", "closed_unseen", lang)
    return word("status", a["status"], lang)


def item_name(library: Any, item_id: str, lang: str = DEFAULT) -> str:
    """A questionnaire item as "PHQ-9 vraag 9" (the questionnaire's short title, the number)."""
    for q in library.latest.values() if library is not None else ():
        for n, item in enumerate(q.items, start=1):
            if item.id == item_id:
                return f"{_short(q, lang)} {'vraag' if lang == 'nl' else 'item'} {n}"
    return item_id
