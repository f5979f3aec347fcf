"""Guard an MCP server of the official ``mcp`` SDK (``mcp.server.MCPServer``, 2.x): every
``tools/call`` is authorized with the tool name as the action before the tool runs; a deny is an
``isError`` result naming the cause and the policies; ``tools/list`` offers only the tools the
principal may call. Options are values or callables of ``(arguments, ctx)``, ``ctx`` being the
SDK's request context (its ``session``, ``meta`` and ``request``), so the principal can come from
the session or its OAuth subject. Requires ``mcp``.
"""

from __future__ import annotations

from typing import Any

from ambit._guard import Denied, call_value, check, snapshot


def guard_mcp_server(server: Any, authz: Any, *, principal: Any, resource: Any, action: Any = None,
                     context: Any = None, on_behalf_of: Any = None, filter_list: bool = True) -> Any:
    """Adds ambit to ``server.middleware`` and returns the server."""
    middleware = getattr(server, "middleware", None)
    if not isinstance(middleware, list):
        raise TypeError("guard_mcp_server takes an mcp.server.MCPServer (mcp 2.x)")

    def decide(name: str, arguments: dict[str, Any], ctx: Any) -> Denied | None:
        spec = dict(principal=principal, resource=resource, context=context, on_behalf_of=on_behalf_of,
                    action=action if action is not None else name)
        try:
            check(authz, arguments, **{k: call_value(v, arguments, ctx) for k, v in spec.items()})
        except Denied as denied:
            return denied
        except Exception as error:  # an option that fails denies
            return Denied(None, error)
        return None

    async def ambit_guard(ctx: Any, call_next: Any) -> Any:
        if ctx.method == "tools/call":
            params = dict(ctx.params or {})
            arguments = snapshot(params.get("arguments") or {})
            denied = decide(str(params.get("name")), arguments, ctx)
            if denied is not None:
                return {"content": [{"type": "text", "text": str(denied)}], "isError": True, "resultType": "complete"}
            return await call_next(ctx)
        if ctx.method == "tools/list" and filter_list:
            listed = await call_next(ctx)
            if isinstance(listed, dict) and isinstance(listed.get("tools"), list):
                listed = dict(listed)
                listed["tools"] = [t for t in listed["tools"] if decide(str(t.get("name")), {}, ctx) is None]
            return listed
        return await call_next(ctx)

    # innermost: after the SDK's own middleware, right before the handler
    middleware.append(ambit_guard)
    return server


__all__ = ["guard_mcp_server"]
