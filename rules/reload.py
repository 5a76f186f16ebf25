"""Hot reload: swap in new rules only when every file is valid; otherwise keep the last good set running."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path

from core.errors import ConfigError
from rules.loader import RuleSet, build_rule_set, read_rule_sources

logger = logging.getLogger(__name__)


class RuleReloader:
    """Holds the current good RuleSet. The caller decides when to poll; unchanged files cost a read + hash.

    `generation` counts successful swaps: a caller rebuilds what it compiled from `current` when it moves.
    """

    def __init__(self, initial: RuleSet | None = None) -> None:
        self._lock = threading.Lock()
        self._current = initial if initial is not None else RuleSet.empty()
        self._seen_digest = self._current.digest
        self._last_error: list[str] = []
        self._generation = 0

    @property
    def current(self) -> RuleSet:
        return self._current

    @property
    def last_error(self) -> list[str]:
        """The problems of the last reload, empty when it succeeded or found nothing changed."""
        return list(self._last_error)

    @property
    def generation(self) -> int:
        return self._generation

    def reload(self, paths: Sequence[Path]) -> list[str]:
        """Re-read `paths`; swap atomically if changed and valid. Returns the problems, empty when fine."""
        sources = read_rule_sources(paths)
        with self._lock:
            if sources.digest == self._seen_digest:
                return list(self._last_error)
            self._seen_digest = sources.digest
            try:
                ruleset = build_rule_set(sources)
            except ConfigError as exc:
                self._last_error = list(exc.problems)
                logger.warning(
                    "rule files invalid, keeping %d rules from before: %s",
                    len(self._current.rules),
                    "; ".join(exc.problems),
                )
                return list(self._last_error)
            self._current = ruleset
            self._last_error = []
            self._generation += 1
            logger.info("rules reloaded: %d rules from %d files", len(ruleset.rules), len(ruleset.files))
            return []
