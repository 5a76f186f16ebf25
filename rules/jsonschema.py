"""The JSON Schema of a rule file, for editors (e.g. a `# yaml-language-server: $schema=...` line)."""

from __future__ import annotations

import logging
from typing import Any

from rules.registry import RuleFile

logger = logging.getLogger(__name__)

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def rule_file_json_schema() -> dict[str, Any]:
    """A fresh JSON Schema (draft 2020-12) of `RuleFile`; the caller may serialise it with `json.dumps`."""
    return {"$schema": SCHEMA_DIALECT, **RuleFile.model_json_schema()}
