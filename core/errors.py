"""Errors that carry enough context to act on."""

from __future__ import annotations


class GridwatchError(Exception):
    """Base of every error gridwatch raises on purpose."""


class ConfigError(GridwatchError):
    """A configuration file is invalid. `problems` are `file:line:col: path: message` lines."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class ModelError(GridwatchError):
    """A model file is missing, corrupt or not what its manifest says."""


class GrabError(GridwatchError):
    """A camera could not be read. The message never contains credentials."""
