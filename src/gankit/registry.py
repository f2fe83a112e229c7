"""Small name -> object registries: the one place where strings become objects."""
from __future__ import annotations

import difflib
from typing import Any, Callable, Dict, List


class GankitError(Exception):
    """An error the user can fix (bad config, bad data, bad file). The CLI prints it as one line, exit 2."""


def did_you_mean(name: str, choices: List[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


class Registry:
    """`@REG.register("name")` on a function or class; `REG.get("name")` returns it; unknown names fail loudly."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: Dict[str, Any] = {}

    def register(self, name: str, obj: Any = None) -> Callable:
        def add(o):
            if name in self._items:
                raise ValueError(f"{self.kind} '{name}' registered twice")
            self._items[name] = o
            return o
        return add(obj) if obj is not None else add

    def get(self, name: str) -> Any:
        if name not in self._items:
            raise GankitError(f"unknown {self.kind} '{name}'{did_you_mean(name, self.names())}; "
                              f"choose from {', '.join(self.names())}")
        return self._items[name]

    def names(self) -> List[str]:
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        return name in self._items
