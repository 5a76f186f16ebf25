from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from rules.jsonschema import rule_file_json_schema
from rules.kinds.zone_intrusion import ZoneIntrusionRule
from tests.rules.builders import DATA

jsonschema = pytest.importorskip("jsonschema", reason="jsonschema validates the exported schema")


def test_schema_exports_strict_rule_kinds() -> None:
    schema = rule_file_json_schema()
    json.dumps(schema)  # plain JSON
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["additionalProperties"] is False
    rules = schema["properties"]["rules"]["items"]
    assert rules["discriminator"]["propertyName"] == "kind"
    assert set(rules["discriminator"]["mapping"]) == {"zone_intrusion"}
    rule = schema["$defs"]["ZoneIntrusionRule"]
    assert rule["additionalProperties"] is False
    assert set(rule["properties"]) == set(ZoneIntrusionRule.model_fields)
    assert schema["$defs"]["Zone"]["properties"]["polygon"]["minItems"] == 3
    jsonschema.Draft202012Validator.check_schema(schema)


def _leaves(errors: Any) -> list[str]:
    """Messages of the innermost errors (`oneOf` wraps the errors of each rule)."""
    return [m for e in errors for m in (_leaves(e.context) if e.context else [e.message])]


def _errors(document: Any) -> list[str]:
    validator = jsonschema.Draft202012Validator(rule_file_json_schema())
    return sorted(_leaves(validator.iter_errors(document)))


@pytest.mark.parametrize("name", ["valid/10-walkway.yaml", "valid/20-night.yml", "unknown_class.yaml"])
def test_valid_files_pass_the_exported_schema(name: str) -> None:
    assert _errors(yaml.safe_load((DATA / name).read_text(encoding="utf-8"))) == []


def test_schema_catches_what_editors_should_flag() -> None:
    document = yaml.safe_load((DATA / "bad" / "unknown_key.yaml").read_text(encoding="utf-8"))
    document["rules"][0]["armed"] = [{"start": "8:00", "end": "09:00"}]
    document["rules"][0]["category"] = "05a1"
    assert _errors(document) == [
        "'05a1' does not match '^[0-9]+$'",
        "'8:00' does not match '^([01][0-9]|2[0-3]):[0-5][0-9]$'",
        "Additional properties are not allowed ('max_dwell_s' was unexpected)",
    ]
