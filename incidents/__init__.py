"""Incidents: one identity per real-world problem, from the verdicts of many visits (open, update, close)."""

from incidents.tracker import IncidentChange, IncidentPolicy, IncidentTracker

__all__ = ["IncidentChange", "IncidentPolicy", "IncidentTracker"]
