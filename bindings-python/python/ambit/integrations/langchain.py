"""Guard LangChain tools: ``guard_tool`` returns a real ``langchain_core`` ``BaseTool`` whose
every invocation path (``invoke`` / ``ainvoke``, ``batch`` / ``abatch``, ``stream`` /
``astream``, ``run`` / ``arun``, ``with_config(...)``, ``with_retry()``, a ``ToolCall`` input, a
LangGraph ``ToolNode``) goes through one authorized ``_run`` / ``_arun``: the wrapped tool is
never reachable around the check. Requires ``langchain-core``.

A deny becomes the tool's error output (``"denied (forbidden): forbidden by `agent-refund-cap`"``,
a ``ToolMessage`` with ``status="error"`` under a tool call), so an agent sees why and goes on;
pass ``on_deny="raise"`` to raise ``ambit.AmbitDenied`` instead.
"""

from __future__ import annotations

from typing import Any

from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool, ToolException
from pydantic import ConfigDict, PrivateAttr

from ambit._guard import AmbitDenied, call_value, check, snapshot


def _arguments(tool_input: Any) -> dict[str, Any]:
    return dict(tool_input) if isinstance(tool_input, dict) else {"input": tool_input}


def _from_config(config: RunnableConfig | None) -> Any:
    """The principal a caller put in ``config["configurable"]["ambit_principal"]``."""
    return ((config or {}).get("configurable") or {}).get("ambit_principal")


def _deny_message(error: ToolException) -> str:
    return str(error)


class GuardedTool(BaseTool):
    """A tool whose every call is authorized first, on a snapshot of its input that the wrapped
    tool then receives."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    _inner: BaseTool = PrivateAttr()
    _authz: Any = PrivateAttr()
    _spec: dict[str, Any] = PrivateAttr()
    _raise: bool = PrivateAttr(default=False)

    def _decide(self, tool_input: Any, config: RunnableConfig | None) -> Any:
        taken = snapshot(tool_input)
        arguments = _arguments(taken)
        principal = self._spec["principal"]
        principal = _from_config(config) if principal is None else call_value(principal, arguments, config)
        values = {k: call_value(v, arguments, config) for k, v in self._spec.items() if k != "principal"}
        try:
            check(self._authz, arguments, principal=principal, **values)
        except AmbitDenied as denied:
            if self._raise:
                raise
            raise ToolException(str(denied)) from denied
        return taken

    def _input(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return args[0] if args and not kwargs else kwargs

    def _run(self, *args: Any, config: RunnableConfig, **kwargs: Any) -> Any:
        kwargs.pop("run_manager", None)
        taken = self._decide(self._input(args, kwargs), config)
        return self._inner.invoke(taken, config)

    async def _arun(self, *args: Any, config: RunnableConfig, **kwargs: Any) -> Any:
        kwargs.pop("run_manager", None)
        taken = self._decide(self._input(args, kwargs), config)
        return await self._inner.ainvoke(taken, config)


def guard_tool(tool: BaseTool, authz: Any, *, resource: Any, principal: Any = None, action: Any = None,
               context: Any = None, on_behalf_of: Any = None, on_deny: str = "message") -> GuardedTool:
    """Wraps a LangChain ``tool``. ``action`` defaults to ``tool.name``; ``context`` to none
    (give ``context=lambda args: {...}`` for actions whose context the schema declares);
    ``principal`` to ``config["configurable"]["ambit_principal"]`` of each call. Every option
    may be a value, a callable of the tool's arguments, or a callable of the arguments and the
    call's ``RunnableConfig``. ``on_deny``: ``"message"`` (the tool's error output) or ``"raise"``."""
    if not isinstance(tool, BaseTool):
        raise TypeError("guard_tool wraps a langchain_core BaseTool (use ambit.guard for plain functions)")
    if on_deny not in ("message", "raise"):
        raise ValueError("on_deny is 'message' or 'raise'")
    guarded = GuardedTool(
        name=tool.name,
        description=tool.description,
        args_schema=tool.args_schema,
        return_direct=tool.return_direct,
        handle_tool_error=_deny_message,
    )
    guarded._inner = tool
    guarded._authz = authz
    guarded._spec = dict(
        principal=principal,
        resource=resource,
        action=action if action is not None else tool.name,
        context=context,
        on_behalf_of=on_behalf_of,
    )
    guarded._raise = on_deny == "raise"
    return guarded


__all__ = ["GuardedTool", "guard_tool"]


