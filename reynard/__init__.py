"""Reynard: a small, raw-SQL backend on aiohttp and one SQLite file."""

__version__ = "0.1.0"
