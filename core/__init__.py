"""Shared types, clock, errors and settings. Pure: no I/O at import or call time."""
