from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from rules.jsonschema import rule_file_json_schema
from rules.registry import KINDS
from tests.rules.builders import DATA

jsonschema = pytest.importorskip("jsonschema", reason="jsonschema validates the exported schema")


def test_schema_exports_strict_rule_kinds() -> None:
    schema = rule_file_json_schema()
    json.dumps(schema)  # plain JSON
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["additionalProperties"] is False
    rules = schema["properties"]["rules"]["items"]
    assert rules["discriminator"]["propertyName"] == "kind"
    assert set(rules["discriminator"]["mapping"]) == set(KINDS)
    for kind in KINDS.values():
        definition = schema["$defs"][kind.model.__name__]
        assert definition["additionalProperties"] is False
        assert set(definition["properties"]) == set(kind.model.model_fields)
    assert schema["$defs"]["Zone"]["properties"]["polygon"]["minItems"] == 3
    jsonschema.Draft202012Validator.check_schema(schema)


def _leaves(errors: Any) -> list[str]:
    """Messages of the innermost errors. `oneOf` wraps the errors of each rule kind's branch: only the branch
    whose `kind` matches is the rule's (the others fail on `kind` first)."""
    out: list[str] = []
    for e in errors:
        if not e.context:
            out.append(e.message)
            continue
        branches: dict[object, list[Any]] = {}
        for sub in e.context:
            branches.setdefault(sub.relative_schema_path[0], []).append(sub)
        for subs in branches.values():
            if not any(list(sub.relative_path)[-1:] == ["kind"] for sub in subs):
                out.extend(_leaves(subs))
    return out


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
