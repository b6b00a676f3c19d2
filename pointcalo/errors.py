"""Errors a user can cause: one clear line naming the file, field or value."""

from __future__ import annotations

from pathlib import Path


class PointcaloError(ValueError):
    """Base class for user-facing errors; the CLI prints ``str(err)`` and exits with code 2."""


class ShowerFormatError(PointcaloError):
    """Showers (in memory or in a file) do not follow the data model.

    The message has the form ``"<source>: <field>: <problem>"`` so a user sees at once which
    file and which field are at fault.
    """

    def __init__(self, source: str | Path | None, field: str | None, problem: str) -> None:
        self.source = str(source) if source is not None else "<memory>"
        self.field = field
        self.problem = problem
        where = f"{self.source}: {field}: " if field else f"{self.source}: "
        super().__init__(where + problem)


class ConfigError(PointcaloError):
    """A configuration file or value is invalid."""
