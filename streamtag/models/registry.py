"""The model registry: released models by name, collected from the families that declare them.

The registry knows no family: each family module declares a `Family` (its entries and its
builder), and `catalog.py` hands the families to a `Registry`.
"""
from __future__ import annotations

import difflib
import fnmatch
from typing import Iterable

from ..errors import ConfigError, UnknownModelError
from .family import Family
from .spec import ModelSpec, model_key


class Registry:
    """Released models by name, in declaration order, from a sequence of families."""

    def __init__(self, families: Iterable[Family]) -> None:
        self.families: dict[str, Family] = {}
        self.models: dict[str, ModelSpec] = {}
        for family in families:
            if family.name in self.families:
                raise ConfigError(f"model family {family.name!r} is declared twice")
            self.families[family.name] = family
            for spec in family.entries:
                if spec.name in self.models:
                    raise ConfigError(f"model {spec.name!r} is declared twice")
                self.models[spec.name] = spec

    def get(self, name: str) -> ModelSpec:
        """The entry for `name`, matched without regard to case, spaces or `-`/`_` (MN10-AS is mn10_as); an
        unknown name raises with the closest matches."""
        spec = self.models.get(name)
        if spec is not None:
            return spec
        key = model_key(str(name))
        for registered, spec in self.models.items():
            if model_key(registered) == key:
                return spec
        close = difflib.get_close_matches(key, list(self.models), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UnknownModelError(f"unknown model {name!r}{hint} (`streamtag models` lists all {len(self.models)})")

    def list(self, pattern: str = "*") -> list[ModelSpec]:
        """The entry named `pattern`, else those matching it as a shell-style pattern, or containing it; in order."""
        if pattern in self.models:  # a full name: that entry only
            return [self.models[pattern]]
        pattern = model_key(pattern)
        if not any(c in pattern for c in "*?["):
            return [s for s in self.models.values() if pattern in s.name]
        return [s for s in self.models.values() if fnmatch.fnmatch(s.name, pattern)]

    def family(self, spec: ModelSpec) -> Family:
        """The family that builds `spec`."""
        try:
            return self.families[spec.family]
        except KeyError:
            raise UnknownModelError(f"{spec.name}: no model family {spec.family!r} is registered") from None


__all__ = ["Registry"]
