"""Guard LangChain-style tools: every call is authorized with the tool's name as the action
and its input as the context. Duck-typed (``name``, ``invoke`` / ``ainvoke`` / ``run``): works
with ``langchain_core`` tools without importing LangChain."""

from __future__ import annotations

from typing import Any

from ambit._guard import check, snapshot


def _arguments(tool_input: Any) -> dict[str, Any]:
    return dict(tool_input) if isinstance(tool_input, dict) else {"input": tool_input}


class GuardedTool:
    """A tool whose every call is authorized first; other attributes pass through."""

    def __init__(self, tool: Any, authz: Any, *, principal: Any, resource: Any,
                 action: Any = None, context: Any = None, on_behalf_of: Any = None) -> None:
        self._tool = tool
        self._spec = dict(
            principal=principal,
            resource=resource,
            action=action if action is not None else tool.name,
            context=context if context is not None else (lambda arguments: arguments),
            on_behalf_of=on_behalf_of,
        )
        self._authz = authz

    def _check(self, tool_input: Any) -> Any:
        """Decides on a snapshot of the input and returns it: the tool gets what was decided."""
        taken = snapshot(tool_input)
        check(self._authz, _arguments(taken), **self._spec)
        return taken

    def invoke(self, tool_input: Any, *args: Any, **kwargs: Any) -> Any:
        return self._tool.invoke(self._check(tool_input), *args, **kwargs)

    async def ainvoke(self, tool_input: Any, *args: Any, **kwargs: Any) -> Any:
        return await self._tool.ainvoke(self._check(tool_input), *args, **kwargs)

    def run(self, tool_input: Any, *args: Any, **kwargs: Any) -> Any:
        return self._tool.run(self._check(tool_input), *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tool, name)


def guard_tool(tool: Any, authz: Any, *, principal: Any, resource: Any, action: Any = None,
               context: Any = None, on_behalf_of: Any = None) -> GuardedTool:
    """Wraps ``tool``. ``action`` defaults to ``tool.name``; ``context`` to the tool input
    (a dict); each option may be a callable over the input dict."""
    return GuardedTool(tool, authz, principal=principal, resource=resource, action=action,
                       context=context, on_behalf_of=on_behalf_of)
