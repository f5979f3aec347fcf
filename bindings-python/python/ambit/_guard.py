"""Authorize every call of a tool function: a deny (or any error) raises ``Denied``."""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, Mapping, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class Denied(PermissionError):
    """A guarded call was not allowed. ``decision`` is the deny (``None`` when an error, such as
    a malformed request, denied it: guards fail closed); ``error`` is that error."""

    def __init__(self, decision: Any = None, error: BaseException | None = None) -> None:
        self.decision = decision
        self.error = error
        if decision is not None:
            message = f"denied: {decision.deny_cause}"
        else:
            message = f"denied: {type(error).__name__}: {error}"
        super().__init__(message)


def _value(spec: Any, arguments: Mapping[str, Any]) -> Any:
    return spec(dict(arguments)) if callable(spec) else spec


def check(authz: Any, arguments: Mapping[str, Any], *, action: Any, resource: Any, principal: Any,
          context: Any = None, entities: Any = None, on_behalf_of: Any = None) -> Any:
    """Decides one guarded call; returns the allow, raises ``Denied`` otherwise."""
    try:
        decision = authz.authorize(
            _value(principal, arguments),
            _value(action, arguments),
            _value(resource, arguments),
            context=_value(context, arguments),
            entities=_value(entities, arguments),
            on_behalf_of=_value(on_behalf_of, arguments),
        )
    except Exception as error:  # fail closed: an error denies
        raise Denied(None, error) from error
    if not decision.allowed:
        raise Denied(decision)
    return decision


def guard(authz: Any, *, action: Any, resource: Any, principal: Any, context: Any = None,
          entities: Any = None, on_behalf_of: Any = None) -> Callable[[F], F]:
    """Decorator for sync and async tool functions. Each argument may be a value or a callable
    taking a dict of the tool's (bound) arguments, e.g. ``context=lambda a: {"amount": a["amount"]}``."""
    spec = dict(action=action, resource=resource, principal=principal, context=context,
                entities=entities, on_behalf_of=on_behalf_of)

    def decorate(fn: F) -> F:
        signature = inspect.signature(fn)

        def arguments(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            return dict(bound.arguments)

        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                check(authz, arguments(args, kwargs), **spec)
                return await fn(*args, **kwargs)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            check(authz, arguments(args, kwargs), **spec)
            return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
