"""Authorize every call of a tool function: a deny (or any error) raises ``AmbitDenied``."""

from __future__ import annotations

import copy
import functools
import inspect
from typing import Any, Callable, Mapping, TypeVar

from ambit._ambit import AmbitError

F = TypeVar("F", bound=Callable[..., Any])


class AmbitDenied(AmbitError, PermissionError):
    """A guarded call was not allowed: an ``ambit.AmbitError`` (and a ``PermissionError``) with
    ``code == "AMBIT_DENIED"``, the same name as Node's ``AmbitDenied``. ``decision`` is the deny (``None``
    when an error, such as a malformed request, denied it: guards fail closed); ``error`` is
    that error. The message names the cause and the policies that decided."""

    code = "AMBIT_DENIED"

    def __init__(self, decision: Any = None, error: BaseException | None = None) -> None:
        self.decision = decision
        self.error = error
        if decision is not None:
            reasons = ", ".join(f"`{r}`" for r in decision.reasons)
            message = f"denied ({decision.deny_cause})" + (f": {reasons}" if reasons else "")
        else:
            message = f"denied: {type(error).__name__}: {error}"
        super().__init__(message)
        self.code = "AMBIT_DENIED"


#: Deprecated: the old name of :class:`AmbitDenied` (one name in every language), kept one
#: release so ``except ambit.Denied`` still catches it.
Denied = AmbitDenied


def snapshot(value: Any) -> Any:
    """A deep copy to decide on and to hand the tool, so that a getter or a later mutation
    cannot show the policy one value and the tool another; a value that cannot be copied denies."""
    try:
        return copy.deepcopy(value)
    except Exception as error:  # fail closed
        raise AmbitDenied(None, error) from error


def call_value(spec: Any, arguments: Mapping[str, Any], call: Any) -> Any:
    """A guard option: a value, a callable of the arguments, or a callable of the arguments and
    the framework's per-call object (LangChain's ``RunnableConfig``, MCP's request context)."""
    if not callable(spec):
        return spec
    try:
        takes_call = len(inspect.signature(spec).parameters) >= 2
    except (TypeError, ValueError):
        takes_call = False
    return spec(dict(arguments), call) if takes_call else spec(dict(arguments))


def _value(spec: Any, arguments: Mapping[str, Any]) -> Any:
    return spec(dict(arguments)) if callable(spec) else spec


def _declared(authz: Any, action: Any, arguments: Mapping[str, Any]) -> Any:
    """The arguments the action's context type declares (values that are not JSON, such as a
    method's receiver, cannot be context and are left out first)."""
    plain = (str, int, float, bool, list, dict, type(None))
    return authz.context_for(action, {k: v for k, v in arguments.items() if isinstance(v, plain)})


def check(authz: Any, arguments: Mapping[str, Any], *, action: Any, resource: Any, principal: Any,
          context: Any = None, entities: Any = None, on_behalf_of: Any = None) -> Any:
    """Decides one guarded call; returns the allow, raises ``AmbitDenied`` otherwise."""
    try:
        act = _value(action, arguments)
        # without `context=`, the arguments the action's context type declares
        ctx = _declared(authz, act, arguments) if context is None else _value(context, arguments)
        decision = authz.authorize(
            _value(principal, arguments),
            act,
            _value(resource, arguments),
            context=ctx,
            entities=_value(entities, arguments),
            on_behalf_of=_value(on_behalf_of, arguments),
        )
    except Exception as error:  # fail closed: an error denies
        raise AmbitDenied(None, error) from error
    if not decision.allowed:
        raise AmbitDenied(decision)
    return decision


def guard(authz: Any, *, action: Any, resource: Any, principal: Any, context: Any = None,
          entities: Any = None, on_behalf_of: Any = None) -> Callable[[F], F]:
    """Decorator for sync and async tool functions. Each argument may be a value or a callable
    taking a dict of the tool's (bound) arguments, e.g. ``context=lambda a: {"amount": a["amount"]}``."""
    spec = dict(action=action, resource=resource, principal=principal, context=context,
                entities=entities, on_behalf_of=on_behalf_of)

    def decorate(fn: F) -> F:
        signature = inspect.signature(fn)

        def bind(args: tuple[Any, ...], kwargs: dict[str, Any]) -> inspect.BoundArguments:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            # the receiver of a method is not an argument to decide on: it is passed as is
            for name in list(bound.arguments):
                if name not in ("self", "cls"):
                    bound.arguments[name] = snapshot(bound.arguments[name])
            return bound

        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                bound = bind(args, kwargs)
                check(authz, dict(bound.arguments), **spec)
                return await fn(*bound.args, **bound.kwargs)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            bound = bind(args, kwargs)
            check(authz, dict(bound.arguments), **spec)
            return fn(*bound.args, **bound.kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
