"""YAML rules: strict schema, loader with `file:line:col` errors, hot reload, compiled rules, engine."""

from rules.engine import RuleEngine
from rules.jsonschema import rule_file_json_schema
from rules.kinds.zone_intrusion import ZoneIntrusionRule
from rules.loader import RuleSet, check_rule_files, load_rule_files
from rules.registry import KINDS, Rule, RuleFile
from rules.reload import RuleReloader
from rules.state import InMemoryRuleState, RuleStateStore

__all__ = [
    "KINDS",
    "InMemoryRuleState",
    "Rule",
    "RuleEngine",
    "RuleFile",
    "RuleReloader",
    "RuleSet",
    "RuleStateStore",
    "ZoneIntrusionRule",
    "check_rule_files",
    "load_rule_files",
    "rule_file_json_schema",
]
