"""An MCP server over stdio, guarded by ambit with one agent per connection (the test's child
process): python mcp_stdio_server.py POLICY_DIR AUDIT_FILE RAN_FILE.

Its agents are minted under the help-desk service on the connection's first request and
revoked when the connection closes; its audit trail (AUDIT_FILE) shows both. Each tool that
really runs appends its name to RAN_FILE."""

import sys

from mcp.server import MCPServer

import ambit
from ambit.integrations.mcp import guard_mcp_server

policies, audit_file, ran_file = sys.argv[1:4]
authz = ambit.Authorizer.from_dir(policies, audit_file=audit_file)
server = MCPServer("helpdesk")


def ran(name: str) -> None:
    with open(ran_file, "a") as f:
        f.write(name + "\n")


@server.tool()
def issue_refund(ticket: str, amount: int) -> str:
    """Refund part of a ticket's payment."""
    ran("issue_refund")
    return f"refunded {amount} on {ticket}"


@server.tool()
def close_ticket(ticket: str) -> str:
    """Close a ticket."""
    ran("close_ticket")
    return f"closed {ticket}"


guard_mcp_server(
    server, authz,
    principal='Helpdesk::Service::"helpdesk"',  # the session's parent: each connection gets its agent
    resource=lambda args: ambit.Uid("Helpdesk::Ticket", args.get("ticket", "4711")),
    session_agent={"ttl_seconds": 600, "task": "mcp-session",
                   "attributes": {"tenant": {"__entity": {"type": "Helpdesk::Tenant", "id": "acme"}}}},
)

if __name__ == "__main__":
    server.run()  # stdio
    authz.close()
