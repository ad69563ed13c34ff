"""The vision systems (ProMoE, MoFME, AdvMoE) behind the one ``moesuite vision`` command line.

Each system is a subpackage that defines ``SYSTEM`` in its ``system.py``: a :class:`VisionSystem`
naming its models (a :class:`~moesuite.core.registry.Registry`) and the functions the CLI's verbs
call. ``train MODEL`` goes to the system that registers ``MODEL``; ``eval RUN`` and the other
run-taking verbs go to the system named in the run's ``config.json`` (``"system"`` key).

The CLI passes every option it parsed as a keyword argument; options left at ``None`` are
dropped, and an option a system's function does not take is an error naming the option
(``--scheme applies to advmoe models only``), so one command line serves all three systems.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moesuite.core.registry import Registry

__all__ = [
    "VisionSystem",
    "CommandResult",
    "systems",
    "system_for_model",
    "system_for_run",
    "all_models",
    "call",
]

# the subpackages that define ``SYSTEM`` in their ``system.py``
_SYSTEM_MODULES: tuple[str, ...] = ("mofme", "advmoe", "promoe")


@dataclass(frozen=True)
class CommandResult:
    """What a system's command returns: the run directory, its metrics, a summary to print."""

    run_dir: Path
    metrics: dict[str, Any]
    summary: str


@dataclass(frozen=True)
class VisionSystem:
    """One vision system: its models and what each CLI verb calls.

    Attributes:
        name: the subpackage name (``"promoe"``, ``"mofme"``, ``"advmoe"``).
        help: one line for ``moesuite vision list``.
        models: the registry of the models it trains (the system and its baselines).
        train: ``train(model, **options) -> CommandResult``.
        evaluate: ``evaluate(run, **options) -> CommandResult``.
        compare: ``compare(models, **options) -> CommandResult`` (summary: the table).
        demo: ``demo(out_dir) -> list[dict]``, rows of the ``moesuite demo`` table.
        verbs: the system's own verbs (``{"sample": fn}``); ``fn(run, **options) -> CommandResult``.
    """

    name: str
    help: str
    models: Registry[Any]
    train: Callable[..., CommandResult]
    evaluate: Callable[..., CommandResult]
    compare: Callable[..., CommandResult]
    demo: Callable[[Path], list[dict[str, Any]]]
    verbs: dict[str, Callable[..., CommandResult]] = field(default_factory=dict)


def _load() -> Registry[VisionSystem]:
    reg: Registry[VisionSystem] = Registry("vision system")
    for name in _SYSTEM_MODULES:
        system = importlib.import_module(f"moesuite.vision.{name}.system").SYSTEM
        reg.register(system.name, lambda s=system: s, help=system.help)
    return reg


@functools.cache
def systems() -> Registry[VisionSystem]:
    """Every vision system, by name, built on first use from ``_SYSTEM_MODULES``.

    Built lazily: a system module imports this one, so building at import time would be a
    circular import whenever a system module is imported first.
    """
    return _load()


def all_models() -> dict[str, str]:
    """``{model name: system name}`` over every system."""
    return {m: s for s in systems().list() for m in systems().create(s).models.list()}


def system_for_model(model: str) -> VisionSystem:
    """The system that trains ``model``; ``ValueError`` listing every model otherwise."""
    owner = all_models().get(model)
    if owner is None:
        raise ValueError(
            f"unknown model {model!r}; expected one of {sorted(all_models())} "
            "(see `moesuite vision list`)."
        )
    return systems().create(owner)


def system_for_run(run: str | Path) -> VisionSystem:
    """The system that wrote the run directory ``run`` (its ``config.json`` names it)."""
    from moesuite.core.training import read_json

    run = Path(run)
    if not run.is_dir():
        raise FileNotFoundError(
            f"{run}: no such run directory (expected one written by `moesuite vision train`)."
        )
    config = read_json(run / "config.json")
    name = config.get("system") if isinstance(config, dict) else None
    if name is None:
        raise ValueError(
            f"{run}/config.json names no 'system'; was it written by `moesuite vision train`?"
        )
    return systems().create(name)


def call(
    fn: Callable[..., CommandResult], system: VisionSystem, *args: Any, **options: Any
) -> CommandResult:
    """``fn(*args, **options)`` minus ``None`` options; an option ``fn`` lacks is an error."""
    given = {k: v for k, v in options.items() if v is not None}
    params = inspect.signature(fn).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        extra = sorted(k for k in given if k not in params)
        if extra:
            flags = ", ".join("--" + k.replace("_", "-") for k in extra)
            raise ValueError(f"{flags} does not apply to {system.name} models.")
    return fn(*args, **given)
