"""Checks across the fields of a config model, reported at the entry that is wrong, like pydantic's own errors.

pydantic prefixes the location of a `ValidationError` raised inside a validator with the field's own, so a check
over a whole mapping (a date in the wrong year, a category code the table lacks) still points at one entry, and
`core.yamlconf` maps that location to `file:line:col`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from pydantic_core import InitErrorDetails, PydanticCustomError, ValidationError

logger = logging.getLogger(__name__)

Loc = tuple[int | str, ...]


def raise_problems(title: str, error_type: str, problems: Sequence[tuple[Loc, str]]) -> None:
    """Raise one `ValidationError` with a line per `(location, message)`; return when there are none."""
    if not problems:
        return
    details = [
        InitErrorDetails(type=PydanticCustomError(error_type, "{detail}", {"detail": message}), loc=loc, input=None)
        for loc, message in problems
    ]
    raise ValidationError.from_exception_data(title, details)
