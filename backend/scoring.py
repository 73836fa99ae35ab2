"""Scoring functions that are more than a sum or a mean (value sets, special rules).

Each is registered by name with `@scoring_function(name)` and named in a definition's
`[[scores]]` as `method = "function"`, `function = "<name>"`.
"""

from __future__ import annotations
