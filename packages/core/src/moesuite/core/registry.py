"""The one registry helper every moesuite registry is built from (routers, backends, models...).

A :class:`Registry` maps names to builders (classes or functions) with optional preset
arguments and a one-line description. It is written once at import, by a decorator or a call,
and read afterwards: :meth:`Registry.create` builds an entry (``None`` arguments keep the
builder's defaults, so CLI defaults never override model defaults), :meth:`Registry.list`
lists names with shell-style wildcards, and an unknown name raises one ``ValueError`` that
lists the valid names.

Examples:
    >>> from torch import nn
    >>> layers = Registry("layer")
    >>> @layers.register("linear", help="a linear map")
    ... class Linear(nn.Linear):
    ...     pass
    >>> layers.register("wide", Linear, help="a wide linear map", out_features=64)
    >>> layers.list()
    ['linear', 'wide']
    >>> layers.create("wide", in_features=3, out_features=None).out_features
    64
    >>> layers.create("lineer", in_features=3, out_features=2)
    Traceback (most recent call last):
    ...
    ValueError: unknown layer 'lineer'; expected one of ['linear', 'wide'].
"""

from __future__ import annotations

import fnmatch
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, overload

__all__ = ["Entry", "Registry"]

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered name: its builder, preset arguments merged under the caller's, a help line."""

    name: str
    obj: Callable[..., T]
    preset: dict[str, Any] = field(default_factory=dict)
    help: str = ""

    def build(self, **cfg: Any) -> T:
        """``obj(**preset, **cfg)``, dropping ``None`` values of ``cfg``."""
        kwargs = dict(self.preset)
        kwargs.update({k: v for k, v in cfg.items() if v is not None})
        return self.obj(**kwargs)


class Registry(Generic[T]):
    """Names -> builders, for one kind of thing (``kind`` is used in error messages).

    Args:
        kind: what the entries are, singular (``"router"``, ``"model"``, ``"stream"``).
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}

    @overload
    def register(
        self, name: str, obj: None = None, *, help: str = "", **preset: Any
    ) -> Callable[[Any], Any]: ...

    @overload
    def register(
        self, name: str, obj: Callable[..., T], *, help: str = "", **preset: Any
    ) -> None: ...

    def register(
        self, name: str, obj: Callable[..., T] | None = None, *, help: str = "", **preset: Any
    ) -> Any:
        """Register ``obj`` under ``name``; without ``obj``, return a decorator.

        A name registered twice warns and the later entry wins. ``preset`` holds arguments the
        entry always gets (a variant of a class), under those the caller passes to
        :meth:`create`. Without ``help``, the first line of ``obj``'s docstring is used.
        """
        if not isinstance(name, str) or not name:
            raise ValueError(f"a {self.kind} name must be a non-empty string, got {name!r}.")

        def add(target: Callable[..., T]) -> Callable[..., T]:
            if name in self._entries:
                warnings.warn(
                    f"{self.kind} {name!r} registered twice; the later one wins.", stacklevel=3
                )
            text = (
                help or ((getattr(target, "__doc__", None) or "").strip().splitlines() or [""])[0]
            )
            self._entries[name] = Entry(name, target, dict(preset), text)
            return target

        if obj is None:
            return add
        add(obj)
        return None

    def get(self, name: str) -> Entry[T]:
        """The :class:`Entry` of ``name``; ``ValueError`` listing the valid names otherwise."""
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise ValueError(
                f"unknown {self.kind} {name!r}; expected one of {self.list()}."
            ) from None

    def create(self, name: str, **cfg: Any) -> T:
        """Build the entry ``name`` with ``cfg`` over its preset (``None`` values are ignored)."""
        return self.get(name).build(**cfg)

    def list(self, pattern: str = "*") -> list[str]:
        """Registered names matching a shell-style wildcard, sorted."""
        return sorted(n for n in self._entries if fnmatch.fnmatch(n, pattern))

    def help(self) -> dict[str, str]:
        """``{name: help line}`` for every entry, sorted by name."""
        return {n: self._entries[n].help for n in self.list()}

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.list())

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.list()})"
