// An MCP server over stdio guarded by ambit with one agent per session (the stdio test's child
// process): node mcp-stdio-server.mjs POLICY_DIR AUDIT_FILE RAN_FILE. The session agent is
// minted under the help-desk service on the first request and revoked when the connection
// closes; the audit trail shows both. Each tool that really runs appends its name to RAN_FILE.
import fs from 'node:fs'
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js'
import { z } from 'zod'
import { Authorizer, guardMcpServer } from '../ambit.mjs'

const [policies, auditFile, ranFile] = process.argv.slice(2)
const authz = Authorizer.fromDir(policies, { auditFile })
const server = guardMcpServer(new McpServer({ name: 'helpdesk', version: '1.0.0' }), {
  authz,
  principal: 'Helpdesk::Service::"helpdesk"', // the session's parent
  resource: (args) => `Helpdesk::Ticket::"${args.ticket ?? '4711'}"`,
  sessionAgent: { ttlSeconds: 600, attributes: { tenant: { __entity: { type: 'Helpdesk::Tenant', id: 'acme' } } } },
})
const ran = (name) => fs.appendFileSync(ranFile, `${name}\n`)
server.registerTool('issue_refund', { description: 'refund', inputSchema: { ticket: z.string(), amount: z.number().int() } },
  async ({ ticket, amount }) => { ran('issue_refund'); return { content: [{ type: 'text', text: `refunded ${amount} on ${ticket}` }] } })
server.registerTool('close_ticket', { description: 'close', inputSchema: { ticket: z.string() } },
  async ({ ticket }) => { ran('close_ticket'); return { content: [{ type: 'text', text: `closed ${ticket}` }] } })

await server.connect(new StdioServerTransport())
// the client closes our stdin to end the session: close the connection (revoking the session
// agent), then the audit trail
process.stdin.on('end', async () => {
  await server.close()
  authz.close()
  process.exit(0)
})
