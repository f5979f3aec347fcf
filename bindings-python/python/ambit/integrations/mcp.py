"""Guard an MCP server of the official ``mcp`` SDK (``mcp.server.MCPServer``, 2.x): every
``tools/call`` is authorized with the tool name as the action before the tool runs; a deny is an
``isError`` result naming the cause and the policies; ``tools/list`` offers only the tools the
principal may call. Options are values or callables of ``(arguments, ctx)``, ``ctx`` being the
SDK's request context (its ``session``, ``meta`` and ``request``), so the principal can come from
the session or its OAuth subject.

With ``session_agent={"ttl_seconds": seconds, ...}`` the ``principal`` names the session's *parent* (the
person or service the client acts for) and each MCP connection gets its own agent, minted under
that parent on the connection's first request, with the server's tool names as its scopes (or
``session_agent["scopes"]``), ``task`` (default ``"mcp-session"``), ``resources`` and
``attributes``; every decision of that connection is that agent's, and the agent is revoked when
the connection closes (the SDK's per-connection teardown). A mint that fails denies. Requires
``mcp``.
"""

from __future__ import annotations

import contextlib
from typing import Any

from ambit._guard import AmbitDenied, call_value, check, snapshot


def guard_mcp_server(server: Any, authz: Any, *, principal: Any, resource: Any, action: Any = None,
                     context: Any = None, on_behalf_of: Any = None, filter_list: bool = True,
                     session_agent: dict[str, Any] | None = None) -> Any:
    """Adds ambit to ``server.middleware`` and returns the server."""
    middleware = getattr(server, "middleware", None)
    if not isinstance(middleware, list):
        raise TypeError("guard_mcp_server takes an mcp.server.MCPServer (mcp 2.x)")
    if session_agent is not None:
        unknown = set(session_agent) - {"ttl_seconds", "task", "scopes", "resources", "attributes"}
        if unknown or not isinstance(session_agent.get("ttl_seconds"), int):
            raise TypeError(
                "session_agent takes ttl_seconds (seconds, required), task, scopes, resources, attributes"
                + (f"; unknown: {sorted(unknown)}" if unknown else "")
            )

    # Where a session's agents live. A handshake-era connection persists across its requests:
    # its agents are kept on it and revoked by the SDK's per-connection teardown. In the
    # 2026-07-28 protocol every request carries its own envelope (a connection per request), so
    # the session is the server's run over one transport (stdio, in memory): the lifespan
    # ambit wraps below, whose end revokes them. A request finds its run by the lifespan state
    # the SDK hands it (`ctx.lifespan_context`); runs that share one state object share agents.
    runs: dict[int, list[Any]] = {}  # id(state) -> [state, agents, active runs]
    if session_agent is not None:
        low = getattr(server, "_lowlevel_server", None)
        inner = getattr(low, "lifespan", None)
        if inner is None:
            raise TypeError("session_agent needs an mcp 2.3 MCPServer (its lowlevel server's lifespan)")

        @contextlib.asynccontextmanager
        async def lifespan(app: Any) -> Any:
            async with inner(app) as state:
                entry = runs.setdefault(id(state), [state, {}, 0])
                entry[2] += 1
                try:
                    yield state
                finally:
                    entry[2] -= 1
                    if entry[2] == 0:
                        del runs[id(state)]
                        for uid in entry[1].values():
                            with contextlib.suppress(Exception):  # already revoked, or closed
                                authz.revoke(uid)

        low.lifespan = lifespan

    async def session_principal(ctx: Any) -> Any:
        """The session's own agent, minted under the parent on first use; revoked at its end."""
        from mcp_types.version import MODERN_PROTOCOL_VERSIONS

        spec = session_agent or {}
        parent = str(call_value(principal, {}, ctx))
        connection = getattr(getattr(ctx, "session", None), "_connection", None)
        if connection is None or not isinstance(getattr(connection, "state", None), dict):
            raise TypeError("session_agent needs the MCP connection (mcp 2.3's ServerSession._connection)")
        per_request = connection.protocol_version in MODERN_PROTOCOL_VERSIONS
        if per_request:
            entry = runs.get(id(getattr(ctx, "lifespan_context", None)))
            agents = entry[1] if entry is not None and entry[0] is ctx.lifespan_context else None
        else:
            agents = connection.state.setdefault("ambit_session_agents", {})
        if agents is None:
            raise TypeError("session_agent: this request has no session (a 2026-07-28 request outside the server's run)")
        if parent not in agents:
            scopes = spec.get("scopes")
            if scopes is None:
                scopes = [t.name for t in await server.list_tools()]
        # nothing awaits between this check and the mint: one agent per parent and session
        if parent not in agents:
            agent = authz.mint_agent(
                parent, str(spec.get("task", "mcp-session")), list(scopes), spec["ttl_seconds"],
                resources=spec.get("resources"), attributes=spec.get("attributes"),
            )
            agents[parent] = agent.uid
            if not per_request:
                # the SDK unwinds this stack (shielded) when the connection closes
                connection.exit_stack.callback(authz.revoke, agent.uid)
        return agents[parent]

    def decide(name: str, arguments: dict[str, Any], ctx: Any, acting: Any) -> AmbitDenied | None:
        spec = dict(principal=acting, resource=resource, context=context, on_behalf_of=on_behalf_of,
                    action=action if action is not None else name)
        try:
            check(authz, arguments, **{k: call_value(v, arguments, ctx) for k, v in spec.items()})
        except AmbitDenied as denied:
            return denied
        except Exception as error:  # an option that fails denies
            return AmbitDenied(None, error)
        return None

    def offered(name: str, ctx: Any, acting: Any) -> bool:
        """Whether tools/list shows a tool: hidden when the identity checks deny it whatever its
        arguments (precheck), or when a call with no arguments can be decided and is denied;
        shown when only its arguments can tell (each call is still decided)."""
        try:
            spec = {k: call_value(v, {}, ctx) for k, v in dict(
                principal=acting, resource=resource, on_behalf_of=on_behalf_of,
                action=action if action is not None else name).items()}
        except Exception:
            return True
        try:
            if authz.precheck(spec["principal"], spec["action"], spec["resource"], on_behalf_of=spec["on_behalf_of"]):
                return False
        except Exception:  # the request itself is malformed: no call can succeed
            return False
        denied = decide(name, {}, ctx, acting)
        return denied is None or denied.decision is None

    async def acting_principal(ctx: Any) -> Any:
        if session_agent is None:
            return principal
        try:
            return await session_principal(ctx)
        except Exception as error:  # no agent, no call
            return AmbitDenied(None, error)

    async def ambit_guard(ctx: Any, call_next: Any) -> Any:
        if ctx.method in ("tools/call", "tools/list"):
            acting = await acting_principal(ctx)
        if ctx.method == "tools/call":
            params = dict(ctx.params or {})
            arguments = snapshot(params.get("arguments") or {})
            denied = acting if isinstance(acting, AmbitDenied) else decide(str(params.get("name")), arguments, ctx, acting)
            if denied is not None:
                return {"content": [{"type": "text", "text": str(denied)}], "isError": True, "resultType": "complete"}
            return await call_next(ctx)
        if ctx.method == "tools/list" and filter_list:
            listed = await call_next(ctx)
            if isinstance(listed, dict) and isinstance(listed.get("tools"), list):
                listed = dict(listed)
                listed["tools"] = [
                    t for t in listed["tools"] if not isinstance(acting, AmbitDenied) and offered(str(t.get("name")), ctx, acting)
                ]
            return listed
        return await call_next(ctx)

    # innermost: after the SDK's own middleware, right before the handler
    middleware.append(ambit_guard)
    return server


__all__ = ["guard_mcp_server"]
