"""Load named SQL queries from sql/queries/*.sql (the aiosql file format).

    -- name: get_by_id^
    SELECT ... WHERE id = :id;

Suffixes: none = all rows, ``^`` = one row or None, ``$`` = one value or None,
``!`` = execute (returns rowcount), ``*!`` = executemany, ``<!`` = returning rows.
Queries are namespaced by file: ``q.users.get_by_id``.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
_NAME = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)(\^|\$|!|\*!|<!)?\s*$")
_SUFFIX_MODE = {None: "all", "^": "one", "$": "value", "!": "exec", "*!": "many", "<!": "returning"}


@dataclass(frozen=True)
class Query:
    name: str
    mode: str
    sql: str

    def run(self, conn: sqlite3.Connection, params: Any = ()) -> Any:
        """Execute on a stdlib connection and shape the result by the query's mode."""
        if self.mode == "many":
            return conn.executemany(self.sql, params).rowcount
        cur = conn.execute(self.sql, params)
        try:
            if self.mode == "exec":
                cur.fetchall()
                return cur.rowcount
            rows = cur.fetchall()
        finally:
            cur.close()
        if self.mode == "one":
            return rows[0] if rows else None
        if self.mode == "value":
            return rows[0][0] if rows else None
        return rows


def parse(text: str, namespace: str) -> dict[str, Query]:
    """Split one file into its named queries; a duplicate or empty query is an error."""
    queries: dict[str, Query] = {}
    name = mode = None
    body: list[str] = []

    def flush() -> None:
        if name is None:
            return
        sql = "\n".join(line for line in body if not line.lstrip().startswith("--")).strip()
        if not sql:
            raise ValueError(f"{namespace}.{name}: empty query")
        if name in queries:
            raise ValueError(f"{namespace}.{name}: defined twice")
        queries[name] = Query(f"{namespace}.{name}", mode, sql.rstrip(";").strip())

    for line in text.splitlines():
        match = _NAME.match(line.strip())
        if match:
            flush()
            name, mode, body = match.group(1), _SUFFIX_MODE[match.group(2)], []
        elif name is not None:
            body.append(line)
    flush()
    return queries


def load(directory: Path = SQL_DIR / "queries") -> SimpleNamespace:
    """Return ``q`` with one namespace per file: ``q.cache.get``."""
    root = SimpleNamespace()
    for path in sorted(directory.glob("*.sql")):
        setattr(root, path.stem, SimpleNamespace(**parse(path.read_text("utf-8"), path.stem)))
    return root


def all_queries(q: SimpleNamespace) -> list[Query]:
    return [query for ns in vars(q).values() for query in vars(ns).values()]


q = load()
