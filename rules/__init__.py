"""YAML rules: strict schema, loader with `file:line:col` errors, hot reload, compiled rules, engine."""

from rules.engine import RuleEngine
from rules.jsonschema import rule_file_json_schema
from rules.lifecycle import EventGate
from rules.loader import RuleSet, check_rule_files, load_rule_files
from rules.reload import RuleReloader
from rules.schema import Rule, RuleFile, ZoneIntrusionRule

__all__ = [
    "EventGate",
    "Rule",
    "RuleEngine",
    "RuleFile",
    "RuleReloader",
    "RuleSet",
    "ZoneIntrusionRule",
    "check_rule_files",
    "load_rule_files",
    "rule_file_json_schema",
]
