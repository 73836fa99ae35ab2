"""The one guard against spreadsheet formulas in every CSV the project writes (CSV injection).

Excel and LibreOffice run a cell as a formula when its text starts with `=`, `+`, `-` or `@`,
also after leading spaces or a tab, CR or LF, and also in the full-width forms (`＝` `＋` `－`
`＠`, which they fold to the ASCII ones). `guard` puts a `'` in front of such text: the
spreadsheet shows the text and hides the quote. Text that already starts with `'` gets one
more, so `unguard` gives back exactly what was stored: the long CSV is also replay's input,
and replaying an export must see the same answers the live system saw.
"""

from __future__ import annotations

import unicodedata

_FORMULA = frozenset("=+-@")
_CONTROL_START = ("\t", "\r", "\n")


def _runs_as_formula(text: str) -> bool:
    if text.startswith(_CONTROL_START):
        return True
    stripped = text.lstrip()
    return bool(stripped) and unicodedata.normalize("NFKC", stripped[0])[:1] in _FORMULA


def guard(text: str) -> str:
    """`text` as a spreadsheet shows it without running it."""
    if text.startswith("'") or _runs_as_formula(text):
        return "'" + text
    return text


def unguard(cell: str) -> str:
    """The text `guard` was given (replay reads the long CSV through this)."""
    return cell[1:] if cell.startswith("'") else cell
