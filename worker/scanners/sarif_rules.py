"""The rules of SARIF runs, read one by one and kept in bounded memory.

A SARIF file may describe a million rules (`runs[].tool.driver.rules`). They are streamed from the parser's events,
never built as one driver object, and kept as the few texts a finding needs; past MEMORY_LIMIT rules (all runs
together) they move to a temporary SQLite file, looked up by id or position (with a small cache: results name few
rules).
"""
from __future__ import annotations

import json
import sqlite3
import tempfile
from functools import lru_cache

import ijson
from ijson.common import ObjectBuilder

from ._common import BracketGuard, json_error

RUN, RESULT = "runs.item", "runs.item.results.item"
DRIVER, NAME, RULE = "runs.item.tool.driver", "runs.item.tool.driver.name", "runs.item.tool.driver.rules.item"


class RuleStore:
    """The rules of every run of one report: in memory up to MEMORY_LIMIT in all, then in a temporary SQLite file."""

    MEMORY_LIMIT = 5_000

    def __init__(self):
        self._by_id: dict[tuple[int, str], dict] = {}
        self._by_position: dict[tuple[int, int], dict] = {}
        self._db: sqlite3.Connection | None = None
        self._count = 0
        self.get = lru_cache(maxsize=4096)(self._get)
        self.at = lru_cache(maxsize=4096)(self._at)

    def add(self, run: int, position: int, info: dict) -> None:
        if self._db is None and self._count >= self.MEMORY_LIMIT:
            self._spill()
        if self._db is None:
            self._by_id[(run, info["id"])] = info  # the last rule with an id wins
            self._by_position[(run, position)] = info
        else:
            self._db.execute("INSERT INTO rules VALUES (?, ?, ?, ?)", (run, position, info["id"], json.dumps(info)))
        self._count += 1

    def _spill(self) -> None:
        self._file = tempfile.NamedTemporaryFile(prefix="rampart-sarif-rules-", suffix=".sqlite3")
        self._db = sqlite3.connect(self._file.name)
        self._db.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;"
                               " CREATE TABLE rules (run INTEGER, position INTEGER, id TEXT, info TEXT,"
                               " PRIMARY KEY (run, position))")
        self._db.executemany("INSERT INTO rules VALUES (?, ?, ?, ?)", (
            (run, position, info["id"], json.dumps(info)) for (run, position), info in self._by_position.items()))
        self._by_id, self._by_position = {}, {}

    _indexed = False

    def _get(self, run: int, rule_id: str) -> dict | None:
        if self._db is None:
            return self._by_id.get((run, rule_id))
        if not self._indexed:
            self._db.execute("CREATE INDEX rules_id ON rules (run, id, position)")
            self._indexed = True
        row = self._db.execute("SELECT info FROM rules WHERE run = ? AND id = ? ORDER BY position DESC LIMIT 1",
                               (run, rule_id)).fetchone()
        return json.loads(row[0]) if row else None

    def _at(self, run: int, position: int) -> dict | None:
        if self._db is None:
            return self._by_position.get((run, position))
        row = self._db.execute("SELECT info FROM rules WHERE run = ? AND position = ?", (run, position)).fetchone()
        return json.loads(row[0]) if row else None

    @property
    def spilled(self) -> bool:
        return self._db is not None


class RunRules:
    """One run's view of the store: its rules by id, or by position (SARIF's ruleIndex)."""

    def __init__(self, store: RuleStore, run: int):
        self.store, self.run, self.count = store, run, 0

    def add(self, info: dict | None) -> None:
        """The next rule of the run's list; None for an entry that is not a rule object (it keeps its position)."""
        if info is not None:
            self.store.add(self.run, self.count, info)
        self.count += 1

    def get(self, rule_id: str) -> dict | None:
        if self.store._db is None:  # the usual case: a plain dict lookup (this runs once per result)
            return self.store._by_id.get((self.run, rule_id))
        return self.store.get(self.run, rule_id)

    def at(self, position: int) -> dict | None:
        return self.store.at(self.run, position) if position >= 0 else None


def read_runs(reader, rule_info, *, first_only: bool) -> list[dict]:
    """[{"tool": name, "rules": RunRules, "results": count}] for each run, in one pass over the parser's events.
    first_only: stop at the end of the first run's driver (a one-run report: its results are counted by no one)."""
    runs: list[dict] = []
    store = RuleStore()
    builder = None
    guard = BracketGuard(reader)
    try:
        for prefix, event, value in ijson.parse(guard):
            if builder is not None:  # inside a rule: build it, then keep only what a finding needs
                builder.event(event, value)
                if prefix == RULE and event in ("end_map", "end_array"):
                    runs[-1]["rules"].add(rule_info(builder.value) if isinstance(builder.value, dict) else None)
                    builder = None
            elif prefix == RULE and event in ("start_map", "start_array"):
                builder = ObjectBuilder()
                builder.event(event, value)
            elif prefix == RULE and runs:  # a rule that is a plain value: not a rule, but it holds a position
                runs[-1]["rules"].add(None)
            elif prefix == RUN and event == "start_map":
                runs.append({"tool": "", "rules": RunRules(store, len(runs)), "results": 0})
            elif prefix == NAME and runs:
                runs[-1]["tool"] = str(value)[:200] if value is not None else ""
            elif prefix == RESULT and event not in ("end_map", "end_array", "map_key"):
                runs[-1]["results"] += 1  # every item starts with one event at this prefix
            elif first_only and prefix == DRIVER and event == "end_map":
                break
    except ijson.JSONError as exc:
        raise json_error(exc, guard) from None
    return runs
