// MCP with the real @modelcontextprotocol/sdk 1.32.2 (pinned): an McpServer guarded by ambit,
// a real Client over the SDK's in-memory transport. Every tools/call is decided (a deny is an
// isError result naming cause and policies, the tool never runs), tools/list offers only what
// the principal may call, and the principal comes from the request's extra (authInfo).
import test from 'node:test'
import assert from 'node:assert/strict'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js'
import { z } from 'zod'
import { Authorizer, guardMcpServer } from '../ambit.mjs'

const HELPDESK = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'policies', 'helpdesk')
const SERVICE = 'Helpdesk::Service::"helpdesk"'
const ACME = { tenant: { __entity: { type: 'Helpdesk::Tenant', id: 'acme' } } }

async function setup() {
  const authz = Authorizer.fromDir(HELPDESK)
  const agent = authz.mintAgent({ parent: SERVICE, task: 't', scopes: ['issue_refund'], ttlSeconds: 900, attributes: ACME })
  const ran = []
  const server = guardMcpServer(new McpServer({ name: 'helpdesk', version: '1.0.0' }), {
    authz,
    principal: (_args, extra) => extra.authInfo.extra.principal,
    resource: (args) => `Helpdesk::Ticket::"${args.ticket ?? '4711'}"`,
    context: (args) => ({ amount: args.amount ?? 1 }),
  })
  server.registerTool('issue_refund', { description: 'refund', inputSchema: { ticket: z.string(), amount: z.number().int() } },
    async ({ ticket, amount }) => { ran.push(['issue_refund', amount]); return { content: [{ type: 'text', text: `refunded ${amount} on ${ticket}` }] } })
  server.registerTool('close_ticket', { description: 'close', inputSchema: { ticket: z.string() } },
    async ({ ticket }) => { ran.push(['close_ticket', ticket]); return { content: [{ type: 'text', text: `closed ${ticket}` }] } })
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair()
  await server.connect(serverSide)
  const client = new Client({ name: 'agent', version: '1.0.0' })
  // every request this client sends carries the agent's identity, as an OAuth layer would
  const send = clientSide.send.bind(clientSide)
  clientSide.send = (message, options) => send(message, { ...options, authInfo: { token: 't', clientId: 'c', scopes: [], extra: { principal: agent.uid } } })
  await client.connect(clientSide)
  return { client, ran, server }
}

test('tools/call is decided; a deny is an isError result and the tool never runs', async () => {
  const { client, ran, server } = await setup()
  const ok = await client.callTool({ name: 'issue_refund', arguments: { ticket: '4711', amount: 120 } })
  assert.equal(ok.isError, undefined)
  assert.equal(ok.content[0].text, 'refunded 120 on 4711')
  const no = await client.callTool({ name: 'issue_refund', arguments: { ticket: '4711', amount: 900 } })
  assert.equal(no.isError, true)
  assert.match(no.content[0].text, /forbidden/)
  assert.match(no.content[0].text, /agent-refund-cap/)
  const out = await client.callTool({ name: 'close_ticket', arguments: { ticket: '4711' } })
  assert.equal(out.isError, true, 'close_ticket is outside the agent scopes')
  assert.deepEqual(ran, [['issue_refund', 120]])
  await server.close()
})

test('tools/list offers only what the principal may call', async () => {
  const { client, server } = await setup()
  const { tools } = await client.listTools()
  assert.deepEqual(tools.map((t) => t.name), ['issue_refund'])
  await server.close()
})
