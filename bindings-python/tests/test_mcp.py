"""MCP with the real ``mcp`` 2.3.0 SDK (pinned): an MCPServer guarded by ambit and a real
client over the SDK's in-memory connection. Every tools/call is decided (a deny is an isError
result naming cause and policies; the tool never runs) and tools/list offers only what the
principal may call."""

import asyncio

import pytest
from mcp import Client
from mcp.server import MCPServer

import ambit
from ambit.integrations.mcp import guard_mcp_server

SERVICE = 'Helpdesk::Service::"helpdesk"'
ACME = {"tenant": {"__entity": {"type": "Helpdesk::Tenant", "id": "acme"}}}


def make(helpdesk, principal_of):
    authz = ambit.Authorizer.from_dir(helpdesk)
    agent = authz.mint_agent(SERVICE, "t", ["issue_refund"], 900, attributes=ACME)
    ran = []
    server = MCPServer("helpdesk")

    @server.tool()
    def issue_refund(ticket: str, amount: int) -> str:
        """Refund part of a ticket's payment."""
        ran.append(("issue_refund", amount))
        return f"refunded {amount} on {ticket}"

    @server.tool()
    def close_ticket(ticket: str) -> str:
        """Close a ticket."""
        ran.append(("close_ticket", ticket))
        return f"closed {ticket}"

    guard_mcp_server(
        server, authz,
        principal=lambda args, ctx: principal_of(agent, ctx),
        resource=lambda args: f'Helpdesk::Ticket::"{args.get("ticket", "4711")}"',
        context=lambda args: {"amount": args.get("amount", 1)},
    )
    return server, ran


def text(result):
    return result.content[0].text


def test_tools_call_is_decided_and_a_deny_is_an_error_result(helpdesk):
    server, ran = make(helpdesk, lambda agent, ctx: agent.uid)

    async def run():
        async with Client(server) as c:
            ok = await c.call_tool("issue_refund", {"ticket": "4711", "amount": 120})
            no = await c.call_tool("issue_refund", {"ticket": "4711", "amount": 900})
            out = await c.call_tool("close_ticket", {"ticket": "4711"})
            return ok, no, out

    ok, no, out = asyncio.run(run())
    assert not ok.is_error and text(ok) == "refunded 120 on 4711"
    assert no.is_error and "forbidden" in text(no) and "agent-refund-cap" in text(no)
    assert out.is_error, "close_ticket is outside the agent's scopes"
    assert ran == [("issue_refund", 120)], "denied tools never ran"


def test_tools_list_offers_only_what_the_principal_may_call(helpdesk):
    server, _ = make(helpdesk, lambda agent, ctx: agent.uid)

    async def run():
        async with Client(server) as c:
            return [t.name for t in (await c.list_tools()).tools]

    assert asyncio.run(run()) == ["issue_refund"]


def test_the_principal_sees_the_request_context(helpdesk):
    seen = []

    def principal_of(agent, ctx):
        seen.append(type(ctx.session).__name__)
        return agent.uid

    server, ran = make(helpdesk, principal_of)

    async def run():
        async with Client(server) as c:
            return await c.call_tool("issue_refund", {"ticket": "4711", "amount": 5})

    assert not asyncio.run(run()).is_error
    assert seen and all(s == "ServerSession" for s in seen)


def test_only_mcp_servers_are_guarded(helpdesk):
    with pytest.raises(TypeError):
        guard_mcp_server(object(), ambit.Authorizer.from_dir(helpdesk), principal="x", resource="y")


def test_over_stdio_each_connection_gets_its_own_agent_revoked_at_close(helpdesk, tmp_path):
    """A real MCP server process over stdio (the SDK's stdio transport both ways): the session's
    agent is minted under the service with the tool names as scopes, decides every call, and is
    revoked when the client disconnects."""
    import json
    import sys
    from pathlib import Path

    from mcp.client.stdio import StdioServerParameters

    audit, ran = tmp_path / "audit.jsonl", tmp_path / "ran.txt"
    script = Path(__file__).with_name("mcp_stdio_server.py")
    params = StdioServerParameters(command=sys.executable, args=[str(script), str(helpdesk), str(audit), str(ran)])

    async def session():
        async with Client(params) as c:
            listed = [t.name for t in (await c.list_tools()).tools]
            ok = await c.call_tool("issue_refund", {"ticket": "4711", "amount": 120})
            no = await c.call_tool("issue_refund", {"ticket": "4711", "amount": 900})
            closed = await c.call_tool("close_ticket", {"ticket": "4711"})
            return listed, ok, no, closed

    listed, ok, no, closed = asyncio.run(session())
    # agents may refund (under the cap) but have no permit to close tickets
    assert listed == ["issue_refund"]
    assert not ok.is_error and text(ok) == "refunded 120 on 4711"
    assert no.is_error and "forbidden" in text(no) and "agent-refund-cap" in text(no)
    assert closed.is_error and "no_permit" in text(closed)
    assert ran.read_text().split() == ["issue_refund"], "denied tools never ran"

    records = [json.loads(line) for line in audit.read_text().splitlines()]
    mints = [r for r in records if r["kind"] == "agent_minted"]
    assert len(mints) == 1, "one agent for the connection, minted once"
    agent = mints[0]
    decided = {r.get("principal") for r in records if r["kind"] == "decision"}
    assert decided == {agent["uid"]}, "every call was the session agent's"
    assert agent["parent"] == 'Helpdesk::Service::"helpdesk"'
    assert sorted(agent["scopes"]) == ["close_ticket", "issue_refund"], "the server's tool names"
    revokes = [r for r in records if r["kind"] == "revoked"]
    assert [r["uid"] for r in revokes] == [agent["uid"]], "the agent was revoked when the session ended"
    assert ambit.verify_audit_log([str(audit)])["ok"]


def test_each_connection_has_its_own_session_agent(helpdesk):
    authz = ambit.Authorizer.from_dir(helpdesk)
    server = MCPServer("helpdesk")

    @server.tool()
    def issue_refund(ticket: str, amount: int) -> str:
        """Refund."""
        return "ok"

    guard_mcp_server(server, authz, principal=SERVICE, resource='Helpdesk::Ticket::"4711"',
                     session_agent={"ttl_seconds": 600, "attributes": ACME})

    async def connect():
        async with Client(server) as c:
            r = await c.call_tool("issue_refund", {"ticket": "4711", "amount": 5})
            live = [a for a in authz.agents() if not a.revoked]
            return r, [a.uid for a in live]

    first, live1 = asyncio.run(connect())
    second, live2 = asyncio.run(connect())
    assert not first.is_error and not second.is_error
    assert len(live1) == 1 and len(live2) == 1 and live1 != live2, "a new agent per connection"
    agents = {a.uid: a for a in authz.agents()}
    assert agents[live1[0]].revoked and agents[live2[0]].revoked, "both revoked at their close"
    assert agents[live1[0]].task == "mcp-session" and agents[live1[0]].parent == SERVICE


def test_session_agent_options_are_checked_and_a_failed_mint_denies(helpdesk):
    authz = ambit.Authorizer.from_dir(helpdesk)
    with pytest.raises(TypeError):
        guard_mcp_server(MCPServer("x"), authz, principal=SERVICE, resource="r", session_agent={"ttl_seconds": 60, "tll": 1})
    server = MCPServer("helpdesk")
    ran = []

    @server.tool()
    def issue_refund(ticket: str, amount: int) -> str:
        """Refund."""
        ran.append(amount)
        return "ok"

    # the parent is unknown to the registry and the schema: no agent, so no call
    guard_mcp_server(server, authz, principal='Helpdesk::Agent::"nobody"', resource='Helpdesk::Ticket::"4711"',
                     session_agent={"ttl_seconds": 600})

    async def run():
        async with Client(server) as c:
            return await c.call_tool("issue_refund", {"ticket": "4711", "amount": 5}), (await c.list_tools()).tools

    r, listed = asyncio.run(run())
    assert r.is_error and listed == [] and ran == []
