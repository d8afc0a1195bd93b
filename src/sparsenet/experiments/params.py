"""The allowed values of one TOML key (:class:`Param`) and the error every bad key raises.

Kept apart from ``config.py`` so that the method registries (``methods.py`` and the modules that add
to it) can declare their fields without importing the config parser: imports point one way,
``params`` <- ``methods`` <- ``config``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["ConfigError", "Param"]


class ConfigError(ValueError):
    """A TOML experiment definition is invalid; the message names the key, the file and the rule."""


# --------------------------------------------------------------------------------------------------
# Parameter specifications: one small table, one message format.


@dataclass(frozen=True)
class Param:
    """Allowed values of one key: a type with a range, or a set of choices.

    A choice among the entries of a registry that may grow at run time (solvers, sparsifiers,
    activations) lists the built-in names in ``choices`` and the registry as ``"module:NAME"`` in
    ``registry``: built-in names are checked without importing the registry's module (and numpy),
    any other value against the registry's keys.
    """

    kind: str  # "int" | "float" | "str" | "bool" | "choice" | "int_or_full"
    low: float | None = None
    high: float | None = None
    closed: str = "both"
    choices: tuple = ()
    default: object = None
    registry: str = ""

    def _registered(self):
        if not self.registry:
            return ()
        import importlib

        module, name = self.registry.split(":")
        return tuple(getattr(importlib.import_module(module), name))

    def describe(self):
        if self.kind == "choice":
            names = dict.fromkeys(self.choices + tuple(sorted(self._registered())))
            return "one of " + ", ".join(repr(c) for c in names)
        if self.kind == "bool":
            return "a bool (true or false)"
        if self.kind == "str":
            return "a string"
        left = "[" if self.closed in ("both", "left") and self.low is not None else "("
        right = "]" if self.closed in ("both", "right") and self.high is not None else ")"
        lo = "-inf" if self.low is None else f"{self.low:g}"
        hi = "inf" if self.high is None else f"{self.high:g}"
        kind = "an int" if self.kind in ("int", "int_or_full") else "a float"
        text = f"{kind} in the range {left}{lo}, {hi}{right}"
        if self.kind == "int_or_full":
            text += ' or "full" (full-batch gradient descent)'
        return text

    def check(self, value, key, where, path):
        """Return ``value`` normalized (int/float/str/bool), or raise ConfigError."""

        def fail():
            raise ConfigError(
                f"The '{key}' key of {where} in {path} must be {self.describe()}. Got {value!r} instead."
            )

        if self.kind == "choice":
            if value not in self.choices and (not isinstance(value, str) or value not in self._registered()):
                fail()
            return value
        if self.kind == "bool":
            if not isinstance(value, bool):
                fail()
            return value
        if self.kind == "str":
            if not isinstance(value, str) or not value:
                fail()
            return value
        if self.kind == "int_or_full" and value == "full":
            return value
        if isinstance(value, bool):
            fail()
        if self.kind in ("int", "int_or_full"):
            if not isinstance(value, int):
                fail()
        elif not isinstance(value, (int, float)) or not math.isfinite(value):
            fail()
        lo_ok = self.low is None or (value >= self.low if self.closed in ("both", "left") else value > self.low)
        hi_ok = self.high is None or (value <= self.high if self.closed in ("both", "right") else value < self.high)
        if not (lo_ok and hi_ok):
            fail()
        return int(value) if self.kind in ("int", "int_or_full") else float(value)
