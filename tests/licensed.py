"""Stand-in licensed texts for tests: the repository's template with its placeholders filled in."""

from __future__ import annotations

from pathlib import Path

QUESTIONNAIRES = Path(__file__).resolve().parents[1] / "questionnaires"
PLACEHOLDERS = {
    "[Tekst onder licentie — vervangen door de kliniek]": "Licentietekst",
    "[Licensed text — to be supplied by the clinic]": "Licensed text",
}


def write_licensed(folder: Path, *names: str) -> Path:
    """Put `<name>.toml` in `folder` as a clinic would: the template, real texts in place."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        text = (QUESTIONNAIRES / f"{name}.toml").read_text(encoding="utf-8")
        for placeholder, real in PLACEHOLDERS.items():
            text = text.replace(placeholder, real)
        (folder / f"{name}.toml").write_text(text, encoding="utf-8")
    return folder
