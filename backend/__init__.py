"""Pijnwacht: symptom monitoring between visits for Dutch pain teams."""

__version__ = "0.1.0"
