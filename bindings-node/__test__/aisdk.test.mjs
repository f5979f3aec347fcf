// The Vercel AI SDK (ai 6, pinned) with its real tool() and generateText (issue 16): tool sets
// are guarded by name, each call's options reach the principal, a deny reaches the model as a
// tool error naming the cause and policies, and a denied tool never runs. The model is the AI
// SDK's own MockLanguageModelV3 (no model runs here); everything else is the real package.
import test from 'node:test'
import assert from 'node:assert/strict'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { tool, generateText, stepCountIs } from 'ai'
import { MockLanguageModelV3 } from 'ai/test'
import { z } from 'zod'
import { Authorizer, guardTool, guardTools, AmbitDenied } from '../ambit.mjs'

const HELPDESK = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'policies', 'helpdesk')
const SERVICE = 'Helpdesk::Service::"helpdesk"'
const ACME = { tenant: { __entity: { type: 'Helpdesk::Tenant', id: 'acme' } } }

function setup() {
  const authz = Authorizer.fromDir(HELPDESK)
  const agent = authz.mintAgent({ parent: SERVICE, task: 't', scopes: ['issue_refund'], ttlSeconds: 900, attributes: ACME })
  const executed = []
  const tools = {
    issue_refund: tool({
      description: 'Refund part of a ticket payment',
      inputSchema: z.object({ ticket: z.string(), amount: z.number().int() }),
      execute: async ({ ticket, amount }) => {
        executed.push(amount)
        return `refunded ${amount} on ${ticket}`
      },
    }),
  }
  return { authz, agent, executed, tools }
}

const opts = (authz, principal) => ({
  authz,
  principal,
  resource: (a) => `Helpdesk::Ticket::"${a.ticket}"`,
  context: (a) => ({ amount: a.amount }),
})

test('an AI SDK tool has no name: guardTool says so at once, guardTools uses the keys', async () => {
  const { authz, agent, executed, tools } = setup()
  assert.throws(() => guardTool(tools.issue_refund, opts(authz, agent.uid)), (e) => e.code === 'AMBIT_INVALID_REQUEST')
  const guarded = guardTools(tools, opts(authz, agent.uid))
  const call = { toolCallId: 'c1', messages: [] }
  assert.equal(await guarded.issue_refund.execute({ ticket: '4711', amount: 120 }, call), 'refunded 120 on 4711')
  await assert.rejects(guarded.issue_refund.execute({ ticket: '4711', amount: 900 }, call), (e) => {
    assert.ok(e instanceof AmbitDenied)
    assert.match(e.message, /forbidden/)
    assert.match(e.message, /agent-refund-cap/)
    return true
  })
  assert.deepEqual(executed, [120])
})

test('the principal can come from each call (experimental_context)', async () => {
  const { authz, agent, executed, tools } = setup()
  const guarded = guardTools(tools, { ...opts(authz), principal: (_args, call) => call.experimental_context.principal })
  const as = (principal) => ({ toolCallId: 'c', messages: [], experimental_context: { principal } })
  assert.equal(await guarded.issue_refund.execute({ ticket: '4711', amount: 5 }, as(agent.uid)), 'refunded 5 on 4711')
  await assert.rejects(guarded.issue_refund.execute({ ticket: '4711', amount: 5 }, as('Helpdesk::User::"carol"')), AmbitDenied)
  assert.deepEqual(executed, [5])
})

test('in generateText a deny is a tool error the model sees, and the tool never runs', async () => {
  const { authz, agent, executed, tools } = setup()
  let step = 0
  const model = new MockLanguageModelV3({
    doGenerate: async () => {
      step++
      if (step === 1) {
        return {
          content: [{ type: 'tool-call', toolCallId: 'c1', toolName: 'issue_refund', input: JSON.stringify({ ticket: '4711', amount: 900 }) }],
          finishReason: { unified: 'tool-calls', raw: undefined },
          usage: { inputTokens: { total: 1 }, outputTokens: { total: 1 } },
          warnings: [],
        }
      }
      return {
        content: [{ type: 'text', text: 'done' }],
        finishReason: { unified: 'stop', raw: undefined },
        usage: { inputTokens: { total: 1 }, outputTokens: { total: 1 } },
        warnings: [],
      }
    },
  })
  const result = await generateText({ model, tools: guardTools(tools, opts(authz, agent.uid)), prompt: 'refund', stopWhen: stepCountIs(3) })
  const errors = result.steps.flatMap((s) => s.content).filter((p) => p.type === 'tool-error')
  assert.equal(errors.length, 1)
  assert.match(String(errors[0].error.message ?? errors[0].error), /agent-refund-cap/)
  assert.deepEqual(executed, [])
})

test('without opts.context the context is the arguments the action declares', async () => {
  const { authz, agent, executed, tools } = setup()
  const guarded = guardTools(tools, { authz, principal: agent.uid, resource: (a) => `Helpdesk::Ticket::"${a.ticket}"` })
  assert.deepEqual(authz.contextFor('issue_refund', { ticket: '4711', amount: 3 }), { amount: 3 })
  assert.equal(await guarded.issue_refund.execute({ ticket: '4711', amount: 3 }, { toolCallId: 'c', messages: [] }), 'refunded 3 on 4711')
  await assert.rejects(guarded.issue_refund.execute({ ticket: '4711', amount: 900 }, { toolCallId: 'c', messages: [] }), AmbitDenied)
  assert.deepEqual(executed, [3])
})
