'use strict'
// Hostile input and callbacks (issue 13): values JSON would drop or change are refused, only own
// properties are read, callbacks that throw or reject never end the process, and audit records
// pending at process.exit() are written.
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawnSync } = require('node:child_process')
const { Authorizer, verifyAuditLog, requestFields } = require('..')

const HELPDESK = path.resolve(__dirname, '..', '..', 'policies', 'helpdesk')
const TICKET = 'Helpdesk::Ticket::"4711"'
const ALICE = 'Helpdesk::User::"alice"'
const refundPolicy = 'forbid (principal, action, resource) when { context has flag };\npermit (principal, action, resource);'

const permissive = () => new Authorizer({ policies: refundPolicy, validation: 'off' })
const decide = (authz, context) => authz.authorize({ principal: ALICE, action: 'read', resource: TICKET, context })

test('values JSON.stringify would drop are refused, not dropped (a forbid reading them cannot be bypassed)', () => {
  const authz = permissive()
  assert.equal(decide(authz, { flag: true }).allowed, false)
  const sym = Symbol('s')
  const cases = [
    { flag: undefined },
    { flag: () => 1 },
    { flag: Symbol('x') },
    { flag: { toJSON: () => undefined } },
    { [sym]: 1 },
    { flag: new Date(0) },
    { flag: [1, , 3] }, // eslint-disable-line no-sparse-arrays
    { flag: NaN },
    { flag: Infinity },
    { flag: 2 ** 60 },
    { flag: 2n ** 64n },
    { flag: '\ud800' },
    Object.defineProperty({}, 'flag', { get: () => true, enumerable: true }),
    Object.defineProperty({}, 'flag', { value: true, enumerable: false }),
  ]
  for (const context of cases) {
    assert.throws(() => decide(authz, context), (e) => e.code === 'AMBIT_INVALID_REQUEST', String(Object.keys(context)))
  }
  const cycle = {}
  cycle.self = cycle
  assert.throws(() => decide(authz, cycle), (e) => e.code === 'AMBIT_INVALID_REQUEST')
  // a refusal names where the value is; an object met twice but not inside itself is no cycle
  const deep = { a: [0, { b: Object.defineProperty({}, 'flag', { get: () => true, enumerable: true }) }] }
  assert.throws(() => decide(authz, deep), (e) => e.code === 'AMBIT_INVALID_REQUEST' && e.message === 'context.a[1].b.flag: an accessor property')
  assert.throws(() => decide(authz, { a: [{ c: cycle }] }), (e) => e.message === 'context.a[0].c.self: a cycle')
  const shared = { x: [1] }
  assert.equal(decide(authz, { a: shared, b: [shared, shared] }).allowed, true)
  assert.equal(decide(authz, { a: shared, flag: [shared] }).allowed, false)
})

test('legal Cedar Longs arrive exactly, as BigInt beyond the safe range', () => {
  const authz = new Authorizer({ policies: 'permit (principal, action, resource) when { context.n == 9223372036854775807 };', validation: 'off' })
  assert.equal(decide(authz, { n: 2n ** 63n - 1n }).allowed, true)
  assert.equal(decide(authz, { n: 2 ** 31 }).allowed, false)
})

test('deep nesting is a limit, never a stack overflow', () => {
  let deep = 1
  for (let i = 0; i < 100000; i++) deep = { x: deep }
  assert.throws(() => decide(permissive(), deep), (e) => e.code === 'AMBIT_LIMIT')
})

test('only own properties are request fields', () => {
  const authz = permissive()
  Object.prototype.context = { flag: true } // eslint-disable-line no-extend-native
  Object.prototype.entities = [{ uid: { type: 'X', id: 'y' }, attrs: {}, parents: [] }] // eslint-disable-line no-extend-native
  try {
    const d = authz.authorize({ principal: ALICE, action: 'read', resource: TICKET })
    assert.equal(d.allowed, true, 'an inherited context is not the request context')
  } finally {
    delete Object.prototype.context
    delete Object.prototype.entities
  }
})

test('audit records keep __proto__ and constructor keys as data', async () => {
  const records = []
  const authz = new Authorizer({ policies: 'permit (principal, action, resource);', validation: 'off', auditIncludeContext: true }, null, (r) => records.push(r))
  const context = JSON.parse('{"__proto__": {"polluted": true}, "constructor": "c"}')
  authz.authorize({ principal: ALICE, action: 'read', resource: TICKET, context })
  authz.auditFlush()
  await new Promise((r) => setTimeout(r, 50))
  const d = records.find((r) => r.kind === 'decision')
  assert.ok(d, 'the decision record reached the callback')
  assert.equal(Object.getPrototypeOf(d.context), Object.prototype)
  assert.deepEqual(Object.keys(d.context).sort(), ['__proto__', 'constructor'])
  assert.equal({}.polluted, undefined)
  const recent = authz.auditRecent(10).find((r) => r.kind === 'decision')
  assert.equal(Object.getPrototypeOf(recent.context), Object.prototype)
})

test('a callback that throws, rejects or re-enters does not end the process', () => {
  const script = `
    const { Authorizer } = require(${JSON.stringify(path.resolve(__dirname, '..'))})
    let n = 0
    let authz
    authz = new Authorizer({ policies: 'permit (principal, action, resource);', validation: 'off' }, null, async (r) => {
      n++
      if (n % 3 === 0) throw new Error('sync throw')
      if (n < 10 && authz) { authz.authorize({ principal: 'User::"a"', action: 'read', resource: 'Doc::"d"' }); authz.auditFlush() }
      if (n % 3 === 1) return Promise.reject(new Error('rejected'))
    })
    for (let i = 0; i < 20; i++) authz.authorize({ principal: 'User::"a"', action: 'read', resource: 'Doc::"d"' })
    authz.auditFlush()
    setTimeout(() => { console.log('alive', n > 0); }, 200)
  `
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 60000 })
  assert.equal(r.status, 0, r.stderr)
  assert.match(r.stdout, /alive true/)
})

test('process.exit() with records pending loses none, and the log ends closed', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ambit-exit-'))
  const log = path.join(dir, 'audit.jsonl')
  const script = `
    const { Authorizer } = require(${JSON.stringify(path.resolve(__dirname, '..'))})
    const authz = Authorizer.fromDir(${JSON.stringify(HELPDESK)}, { auditFile: ${JSON.stringify(log)} })
    for (let i = 0; i < 5000; i++) authz.authorize({ principal: ${JSON.stringify(ALICE)}, action: 'read_ticket', resource: ${JSON.stringify(TICKET)} })
    process.exit(0)
  `
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 60000 })
  assert.equal(r.status, 0, r.stderr)
  const report = verifyAuditLog([log])
  assert.equal(report.ok, true, JSON.stringify(report))
  assert.equal(report.closed, true)
  assert.equal(report.records, 5001)
})

test('numbers napi would wrap, and arguments of the wrong type, are coded errors', () => {
  const policies = 'permit (principal, action, resource);'
  // options are the core's one type: every bad one is AMBIT_CONFIG, with the core's words
  for (const options of [{ maxDelegationDepth: -1 }, { auditCapacity: -1 }, { maxDelegationDepth: 1.5 }, { maxDelegationDepth: 'x' },
    { auditMaxRecordBytes: Infinity }, { errorMode: 'failClosed' }, { validaton: 'off' }, { error_mode: 'cedar', errorMode: 'cedar' },
    { trustRequestEntities: 1 }, { agentType: '\ud800' }, { auditOverflow: ['drop'] }]) {
    assert.throws(() => new Authorizer({ policies, validation: 'off', ...options }), (e) => e.code === 'AMBIT_CONFIG' || (e.code === 'AMBIT_INVALID_REQUEST' && /surrogate/.test(e.message)), JSON.stringify(options))
  }
  assert.ok(new Authorizer({ policies, validation: 'off', errorMode: 'fail_closed', maxDelegationDepth: 3, agentType: undefined, auditFile: null }))
  const { ManualClock } = require('..')
  assert.throws(() => new ManualClock(-5), (e) => e.code === 'AMBIT_INVALID_REQUEST')
  assert.throws(() => new ManualClock('x'), (e) => e.code === 'AMBIT_INVALID_REQUEST')
  const authz = Authorizer.fromDir(HELPDESK)
  const mint = (o) => authz.mintAgent({ parent: 'Helpdesk::Service::"helpdesk"', task: 't', scopes: ['read_ticket'], ttlSeconds: 60, ...o })
  assert.ok(mint({}).uid)
  for (const o of [{ ttlSeconds: -1 }, { ttlSeconds: 'soon' }, { scopes: 'read_ticket' }, { attributes: { tenant: '\ud800' } }, { attributes: { f: () => 1 } }]) {
    assert.throws(() => mint(o), (e) => typeof e.code === 'string' && e.code.startsWith('AMBIT_'), JSON.stringify(Object.keys(o)))
  }
  assert.throws(() => authz.auditRecent(-1), (e) => e.code === 'AMBIT_INVALID_REQUEST')
  assert.throws(() => Authorizer.fromDir(42), (e) => e.code === 'AMBIT_INVALID_REQUEST')
})

test('a malformed tools/call request is a coded error', () => {
  const { authorizeToolCall } = require('..')
  const authz = Authorizer.fromDir(HELPDESK)
  const opts = { principal: ALICE, resource: TICKET }
  for (const request of [null, {}, { params: null }, { params: { name: 1 } }, { params: { name: 'read_ticket', arguments: 'x' } }]) {
    assert.throws(() => authorizeToolCall(authz, request, opts), (e) => e.code === 'AMBIT_INVALID_REQUEST', JSON.stringify(request))
  }
})

test('a guard decides on a snapshot of the arguments and hands the tool that snapshot', async () => {
  const { guard } = require('..')
  const authz = new Authorizer({ policies: 'forbid (principal, action, resource) when { context.amount > 100 };\npermit (principal, action, resource);', validation: 'off' })
  let reads = 0
  const args = {}
  Object.defineProperty(args, 'amount', { enumerable: true, get: () => (++reads === 1 ? 5 : 5000) })
  let seen
  const tool = guard((a) => { seen = a.amount; return 'done' }, { authz, principal: ALICE, action: 'refund', resource: TICKET, context: (a) => ({ amount: a.amount }) })
  assert.equal(await tool(args), 'done')
  assert.equal(seen, 5, 'the tool saw the value the policy decided on')
  assert.equal(reads, 1)
})

test('too many request entities are refused before any is converted', () => {
  const authz = Authorizer.fromDir(HELPDESK)
  let touched = 0
  const entity = { get uid() { touched++; return { type: 'Helpdesk::Ticket', id: 'x' } }, attrs: {}, parents: [] }
  const entities = new Array(100000).fill(entity)
  assert.throws(() => authz.authorize({ principal: ALICE, action: 'read_ticket', resource: TICKET, entities }), (e) => e.code === 'AMBIT_LIMIT')
  assert.equal(touched, 0)
})

test('a JSON schema works inline, and entity validation has its own switch', () => {
  const schema = JSON.stringify({ '': { entityTypes: { User: { shape: { type: 'Record', attributes: { level: { type: 'Long' } } } } },
    actions: { read: { appliesTo: { principalTypes: ['User'], resourceTypes: ['User'] } } } } })
  const entities = [{ uid: { type: 'User', id: 'a' }, attrs: { levle: 1 }, parents: [] }]
  const policies = 'permit(principal, action, resource);'
  assert.throws(() => new Authorizer({ schema, policies, entities }), (e) => e.code === 'AMBIT_ENTITIES')
  const a = new Authorizer({ schema, policies, entities, validateEntities: false })
  assert.equal(a.authorize({ principal: 'User::"a"', action: 'read', resource: 'User::"a"' }).allowed, true)
})

test('another agent type can be named', () => {
  const schema = 'entity User; entity Bot in [User] = { owner: String, task: String, scopes: Set<String>, depth: Long, created_at: Long, expires_at: Long }; entity Agent; action read appliesTo { principal: [User, Bot, Agent], resource: User };'
  const entities = [{ uid: { type: 'User', id: 'u' }, attrs: {}, parents: [] }]
  const a = new Authorizer({ schema, policies: 'permit(principal, action, resource);', entities, agentType: 'Bot' })
  const bot = a.mintAgent({ parent: 'User::"u"', task: 't', scopes: ['read'], ttlSeconds: 60 })
  assert.ok(bot.uid.startsWith('Bot::'))
  assert.deepEqual(a.authorize({ principal: bot.uid, action: 'read', resource: 'User::"u"' }).chain, ['User::"u"', bot.uid])
})

test('the package changes no native prototype: every addon method is the addon\'s own', () => {
  const native = require('../index.js')
  for (const klass of [native.Authorizer, native.ManualClock, native.IssuerKey, native.Uid]) {
    for (const key of Object.getOwnPropertyNames(klass.prototype)) {
      const d = Object.getOwnPropertyDescriptor(klass.prototype, key)
      for (const fn of [d.value, d.get, d.set]) {
        if (typeof fn === 'function' && key !== 'constructor') {
          assert.match(Function.prototype.toString.call(fn), /\[native code\]/, `${klass.name}.prototype.${key} was replaced from JS`)
        }
      }
    }
  }
  const ambit = require('..')
  assert.equal(ambit.Uid, native.Uid)
  assert.equal(ambit.ManualClock, native.ManualClock)
  assert.equal(ambit.IssuerKey, native.IssuerKey)
  assert.ok(Authorizer.fromDir(HELPDESK) instanceof native.Authorizer)
})

test('a Decision cannot be forged from text: allowed is the core\'s boolean', () => {
  const { Decision } = require('..')
  const json = JSON.stringify({ allowed: true, denyCause: null, reasons: [] })
  for (const forged of [json, { allowed: true, json }, { allowed: 'true', json: '{}' }, { allowed: true }, null]) {
    assert.throws(() => new Decision(forged), (e) => e.code === 'AMBIT_INVALID_REQUEST')
    assert.throws(() => new Decision(forged, Symbol('ambit.decided')), (e) => e.code === 'AMBIT_INVALID_REQUEST')
    assert.throws(() => new Decision(true, json, Symbol('ambit.decided')), (e) => e.code === 'AMBIT_INVALID_REQUEST')
  }
  // the addon's raw call wants the glue's slot for `allowed`: without one it refuses, it does
  // not hand out a decision whose `allowed` nobody wrote
  const raw = Authorizer.fromDir(HELPDESK)
  for (const slot of [undefined, null, new Uint8Array(0), new Int8Array(1), [1], {}]) {
    assert.throws(() => raw.authorizeRaw(slot, 'Helpdesk::User::"bob"', 'read_ticket', 'Helpdesk::Ticket::"9001"'), (e) => e.code === 'AMBIT_INVALID_REQUEST')
  }
  const authz = Authorizer.fromDir(HELPDESK)
  const deny = authz.authorize({ principal: 'Helpdesk::User::"bob"', action: 'read_ticket', resource: 'Helpdesk::Ticket::"9001"' })
  assert.equal(deny.allowed, false)
  assert.throws(() => { deny.allowed = true }, TypeError)
  assert.equal(deny.allowed, false)
})

test('every addon entry point codes its argument errors, wrong classes included', () => {
  const { Uid, IssuerKey, ManualClock, verifyAuditLog, jwkThumbprint, formatUid } = require('..')
  const authz = Authorizer.fromDir(HELPDESK)
  const key = IssuerKey.generate('i', 'k')
  const uid = new Uid('Helpdesk::User', 'alice')
  const lookalike = { type: 'Helpdesk::User', id: 'alice', toString: () => ALICE }
  const cases = {
    'revoke(5)': () => authz.revoke(5),
    'revoke(lookalike)': () => authz.revoke(lookalike),
    'reinstate()': () => authz.reinstate(),
    'delegationTree(key)': () => authz.delegationTree(key),
    'issueCredential(uid, uid)': () => authz.issueCredential(uid, uid),
    'issueCredential(uid, {})': () => authz.issueCredential(uid, {}),
    'revokeCredential(1)': () => authz.revokeCredential(1),
    'link(5)': () => authz.link(5),
    'link({})': () => authz.link({}),
    'unlink(null)': () => authz.unlink(null),
    'replacePolicies([])': () => authz.replacePolicies([]),
    'replaceEntities(1)': () => authz.replaceEntities(1),
    'IssuerKey.generate(1, 2)': () => IssuerKey.generate(1, 2),
    'IssuerKey.fromJwk("i")': () => IssuerKey.fromJwk('i'),
    'new IssuerKey()': () => new IssuerKey(),
    'dpopProof("GET", 1, "t")': () => key.dpopProof('GET', 1, 't'),
    'dpopProof(.., iat: -1)': () => key.dpopProof('GET', 'https://x', 't', undefined, -1),
    'new Uid(1, 2)': () => new Uid(1, 2),
    'Uid.parse(null)': () => Uid.parse(null),
    'new ManualClock()': () => new ManualClock(),
    'advance("x")': () => new ManualClock(1).advance('x'),
    'verifyAuditLog("x")': () => verifyAuditLog('x'),
    'formatUid(1, 2)': () => formatUid(1, 2),
    'jwkThumbprint(undefined)': () => jwkThumbprint(undefined),
  }
  for (const [name, call] of Object.entries(cases)) {
    assert.throws(call, (e) => typeof e.code === 'string' && e.code.startsWith('AMBIT_'), name)
  }
  assert.equal(uid.equals(5), false)
  assert.equal(uid.equals(new Uid('Helpdesk::User', 'alice')), true)
  assert.equal(uid.equals(lookalike), false)
  // options and clocks of the wrong kind are configuration errors
  const policies = 'permit (principal, action, resource);'
  for (const [name, build] of Object.entries({
    'options 5': () => new Authorizer(5),
    'options "x"': () => new Authorizer('x'),
    'clock {}': () => new Authorizer({ policies, validation: 'off' }, {}),
    'clock a Uid': () => new Authorizer({ policies, validation: 'off' }, uid),
  })) {
    assert.throws(build, (e) => e.code === 'AMBIT_CONFIG', name)
  }
})

test('a field the request format does not have is refused, never dropped (a misspelt context cannot skip a forbid)', () => {
  const authz = permissive()
  assert.equal(decide(authz, { flag: true }).allowed, false)
  const misspelt = { principal: ALICE, action: 'read', resource: TICKET, contxt: { flag: true } }
  assert.throws(() => authz.authorize(misspelt), (e) => e.code === 'AMBIT_INVALID_REQUEST')
  assert.throws(() => authz.explain(misspelt), (e) => e.code === 'AMBIT_INVALID_REQUEST')
  assert.equal(authz.check(misspelt), false)
  const [bad, good] = authz.authorizeBatch([misspelt, { principal: ALICE, action: 'read', resource: TICKET }])
  assert.equal(bad.code, 'AMBIT_INVALID_REQUEST')
  assert.equal(good.allowed, true)
  // the fields are the core's, in camelCase; the error names them
  assert.deepEqual([...requestFields()].sort(), ['action', 'context', 'entities', 'onBehalfOf', 'principal', 'resource'])
  assert.throws(() => authz.authorize(misspelt), (e) => /contxt/.test(e.message) && /onBehalfOf/.test(e.message))
  // snake_case is Python's spelling, not Node's
  assert.throws(() => authz.authorize({ principal: ALICE, action: 'read', resource: TICKET, on_behalf_of: [] }), (e) => e.code === 'AMBIT_INVALID_REQUEST')
})
