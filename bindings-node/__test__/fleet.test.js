// The fleet from Node (issue 18), on a Redis this test starts: two authorizers following one
// stream share one registry; options are camelCase here and checked by the core; a Redis that
// is gone is an AMBIT_FLEET error for writes and stale_state for decisions.
const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { Authorizer, denyCauses } = require('..')
const { startRedis, eventually } = require('./redis-server.js')

const HELPDESK = path.join(__dirname, '..', '..', 'policies', 'helpdesk')
const SERVICE = 'Helpdesk::Service::"helpdesk"'
const TICKET = 'Helpdesk::Ticket::"4711"'
const ACME = { tenant: { __entity: { type: 'Helpdesk::Tenant', id: 'acme' } } }

const refund = (authz, agent) => authz.authorize({ principal: agent, action: 'issue_refund', resource: TICKET, context: { amount: 100 } })

test('two members share one registry; a dead Redis is stale_state and AMBIT_FLEET', async () => {
  const redis = await startRedis()
  try {
    const fleet = { redisUrl: redis.url, stream: 'node', stalenessMs: 300 }
    const a = Authorizer.fromDir(HELPDESK, { fleet })
    const b = Authorizer.fromDir(HELPDESK, { fleet })
    const agent = a.mintAgent({ parent: SERVICE, task: 't', scopes: ['issue_refund'], ttlSeconds: 600, attributes: ACME })
    assert.equal(refund(a, agent.uid).allowed, true)
    await eventually(2000, 'b learns the mint', () => refund(b, agent.uid).allowed)
    assert.equal(b.revoke(agent.uid), 1)
    await eventually(2000, 'a learns the revocation', () => refund(a, agent.uid).denyCause === 'revoked')
    const s = a.fleetStatus()
    assert.deepEqual([s.applied, s.stale, s.eventsApplied, s.halted, s.stalenessMs], [2, false, 2, null, 300])
    assert.ok(s.backend.includes('stream node'), s.backend)
    assert.equal(a.fleetCheckpoint(), 2)
    redis.kill()
    assert.throws(() => a.mintAgent({ parent: SERVICE, task: 't', scopes: ['issue_refund'], ttlSeconds: 60, attributes: ACME }), (e) => e.code === 'AMBIT_FLEET')
    assert.throws(() => a.revokeCredential('some-jti'), (e) => e.code === 'AMBIT_FLEET')
    await eventually(3000, 'a goes stale', () => refund(a, agent.uid).denyCause === 'stale_state')
    assert.equal(a.authorize({ principal: SERVICE, action: 'issue_refund', resource: TICKET, context: { amount: 1 } }).denyCause, 'stale_state')
    await redis.start()
    await eventually(5000, 'a recovers', () => !a.fleetStatus().stale)
    // a newcomer restores the checkpoint
    const c = Authorizer.fromDir(HELPDESK, { fleet })
    assert.deepEqual(c.agents().map((x) => [x.uid, x.revoked]), [[agent.uid, true]])
  } finally {
    redis.close()
  }
})

test('fleet options are the core type: camelCase names, snake_case values, AMBIT_CONFIG', () => {
  assert.ok(denyCauses().includes('stale_state'))
  for (const fleet of [{ redisUrl: 'http://127.0.0.1:1' }, { redisUrl: 'redis://127.0.0.1:1', staleStatic: 'allow' },
    { redisUrl: 'redis://127.0.0.1:1', stalenessMs: 0 }, { redisUrl: 'redis://127.0.0.1:1', bogus: 1 }, {}]) {
    assert.throws(() => Authorizer.fromDir(HELPDESK, { fleet }), (e) => e.code === 'AMBIT_CONFIG', JSON.stringify(fleet))
  }
  assert.throws(() => Authorizer.fromDir(HELPDESK, { fleet: { redisUrl: 'redis://127.0.0.1:1/0', connectTimeoutMs: 200 } }), (e) => e.code === 'AMBIT_FLEET')
  assert.equal(Authorizer.fromDir(HELPDESK).fleetStatus(), null)
})
