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
