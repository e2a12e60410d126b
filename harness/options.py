"""Options declared once, as dataclass fields, and turned into command-line flags.

A field made with `option` carries its help text (and flag names, a minimum) as metadata; `with_options`
gives a typer command one flag per field of each options dataclass and hands the command the built
instances. Adding an option is adding a field.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from typing import Any, Callable


def option(default: Any, help: str, *flags: str, min: int | None = None) -> Any:
    """A dataclass field that is also a command-line flag (named after the field unless ``flags`` are given;
    ``--on/--off`` for a boolean with two names)."""
    return dataclasses.field(default=default, metadata={"help": help, "flags": flags, "min": min})


def given(options: Any) -> dict[str, Any]:
    """The fields of an options instance that were set (not None)."""
    return {f.name: v for f in dataclasses.fields(options) if (v := getattr(options, f.name)) is not None}


def flag(options: Any, name: str) -> str:
    """The flag of a field (``token_budget`` → ``--token-budget``)."""
    declared = next(f.metadata.get("flags") for f in dataclasses.fields(options) if f.name == name)
    return declared[0].split("/")[0] if declared else "--" + name.replace("_", "-")


def with_options(**groups: type) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a typer command whose keyword-only parameters ``group: OptionsClass`` should arrive built:
    each field of each class becomes a flag of the command, after the command's own parameters."""

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        import typer

        own = [p for name, p in inspect.signature(command).parameters.items() if name not in groups]
        hints = typing.get_type_hints(command, localns={cls.__name__: cls for cls in groups.values()})
        annotations = {p.name: hints[p.name] for p in own if p.name in hints}
        owner: dict[str, str] = {}
        added = []
        for group, cls in groups.items():
            field_types = typing.get_type_hints(cls)
            for f in dataclasses.fields(cls):
                if f.name in owner or f.name in annotations:
                    raise TypeError(f"option {f.name!r} of {cls.__name__} is declared twice")
                meta = f.metadata
                default = typer.Option(f.default, *meta.get("flags", ()), help=meta.get("help"), min=meta.get("min"),
                                       show_default=f.default is not None)
                added.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=default,
                                               annotation=field_types[f.name]))
                annotations[f.name] = field_types[f.name]
                owner[f.name] = group

        @functools.wraps(command)
        def wrapper(**kwargs: Any) -> Any:
            values: dict[str, dict[str, Any]] = {group: {} for group in groups}
            for name, group in owner.items():
                values[group][name] = kwargs.pop(name)
            return command(**kwargs, **{group: cls(**values[group]) for group, cls in groups.items()})

        wrapper.__signature__ = inspect.Signature([*own, *added])  # type: ignore[attr-defined]
        wrapper.__annotations__ = annotations
        del wrapper.__wrapped__  # typer must read the new signature, not the command's
        return wrapper

    return decorate
