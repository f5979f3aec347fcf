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

test('over stdio each session gets its own agent, revoked when the session ends', async () => {
  const { StdioClientTransport } = await import('@modelcontextprotocol/sdk/client/stdio.js')
  const fs = await import('node:fs')
  const os = await import('node:os')
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ambit-mcp-'))
  const audit = path.join(dir, 'audit.jsonl')
  const ran = path.join(dir, 'ran.txt')
  const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'mcp-stdio-server.mjs')
  const transport = new StdioClientTransport({ command: process.execPath, args: [script, HELPDESK, audit, ran], stderr: 'inherit' })
  const client = new Client({ name: 'agent', version: '1.0.0' })
  await client.connect(transport)
  const { tools } = await client.listTools()
  assert.deepEqual(tools.map((t) => t.name), ['issue_refund'], 'agents have no permit to close tickets')
  const ok = await client.callTool({ name: 'issue_refund', arguments: { ticket: '4711', amount: 120 } })
  assert.equal(ok.content[0].text, 'refunded 120 on 4711')
  const no = await client.callTool({ name: 'issue_refund', arguments: { ticket: '4711', amount: 900 } })
  assert.equal(no.isError, true)
  assert.match(no.content[0].text, /forbidden.*agent-refund-cap|agent-refund-cap.*forbidden/s)
  const closed = await client.callTool({ name: 'close_ticket', arguments: { ticket: '4711' } })
  assert.equal(closed.isError, true)
  assert.match(closed.content[0].text, /no_permit/)
  await client.close()
  assert.deepEqual(fs.readFileSync(ran, 'utf8').split('\n').filter(Boolean), ['issue_refund'], 'denied tools never ran')

  const records = fs.readFileSync(audit, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l))
  const mints = records.filter((r) => r.kind === 'agent_minted')
  assert.equal(mints.length, 1, 'one agent for the session')
  const [agent] = mints
  assert.equal(agent.parent, SERVICE)
  assert.deepEqual([...agent.scopes].sort(), ['close_ticket', 'issue_refund'], 'the server tool names')
  assert.deepEqual([...new Set(records.filter((r) => r.kind === 'decision').map((r) => r.principal))], [agent.uid])
  assert.deepEqual(records.filter((r) => r.kind === 'revoked').map((r) => r.uid), [agent.uid], 'revoked at the end of the session')
  assert.equal(records.at(-1).kind, 'closed')
})

test('sessionAgent options are checked, and a failed mint denies', async () => {
  const authz = Authorizer.fromDir(HELPDESK)
  assert.throws(() => guardMcpServer(new McpServer({ name: 'x', version: '1' }), { authz, principal: SERVICE, resource: 'r', sessionAgent: { ttlSeconds: 60, ttl: 1 } }),
    (e) => e.code === 'AMBIT_INVALID_REQUEST')
  const ran = []
  const server = guardMcpServer(new McpServer({ name: 'helpdesk', version: '1.0.0' }), {
    authz, principal: 'Helpdesk::Agent::"nobody"', resource: 'Helpdesk::Ticket::"4711"', sessionAgent: { ttlSeconds: 600 },
  })
  server.registerTool('issue_refund', { description: 'refund', inputSchema: { ticket: z.string(), amount: z.number().int() } },
    async () => { ran.push(1); return { content: [{ type: 'text', text: 'ok' }] } })
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair()
  await server.connect(serverSide)
  const client = new Client({ name: 'agent', version: '1.0.0' })
  await client.connect(clientSide)
  const r = await client.callTool({ name: 'issue_refund', arguments: { ticket: '4711', amount: 5 } })
  assert.equal(r.isError, true)
  assert.deepEqual((await client.listTools()).tools, [])
  assert.deepEqual(ran, [])
  await server.close()
})
