"""Alerts: the detection rules (pure), the alert lifecycle and its store, per-patient overrides."""
