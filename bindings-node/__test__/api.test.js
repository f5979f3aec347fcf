'use strict'
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const ambit = require('..')
const { Authorizer, ManualClock, AmbitDenied, guard, guardTool, authorizeToolCall, verifyAuditLog } = ambit

const HELPDESK = path.resolve(__dirname, '..', '..', 'policies', 'helpdesk')
const SERVICE = 'Helpdesk::Service::"helpdesk"'
const TICKET = 'Helpdesk::Ticket::"4711"'
const ALICE = 'Helpdesk::User::"alice"'
const ACME = { tenant: { __entity: { type: 'Helpdesk::Tenant', id: 'acme' } } }

const refundAgent = (authz, scopes = ['issue_refund'], ttlSeconds = 900) =>
  authz.mintAgent({ parent: SERVICE, task: 'ticket-4711', scopes, ttlSeconds, attributes: ACME })

const tmpCopy = () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ambit-node-'))
  for (const f of fs.readdirSync(HELPDESK)) fs.copyFileSync(path.join(HELPDESK, f), path.join(dir, f))
  return dir
}

test('decisions are values with a deny cause', () => {
  const authz = Authorizer.fromDir(HELPDESK)
  const d = authz.authorize({ principal: ALICE, action: 'read_ticket', resource: TICKET })
  assert.equal(d.allowed, true)
  assert.deepEqual(d.reasons, ['staff-tickets'])
  assert.deepEqual(d.chain, [ALICE])
  assert.match(d.decisionId, /^[0-9a-f-]{36}$/)
  const deny = authz.authorize({ principal: 'Helpdesk::User::"bob"', action: 'read_ticket', resource: 'Helpdesk::Ticket::"9001"' })
  assert.equal(deny.denyCause, 'no_permit')
  assert.equal(deny.denyHop, 0)
  assert.equal(d.denyCause, null)
  // fields are read on demand; JSON gives them all, in the same camelCase names
  const json = JSON.parse(JSON.stringify(d))
  assert.equal(json.allowed, true)
  assert.equal(json.decisionId, d.decisionId)
  assert.deepEqual(json.reasons, ['staff-tickets'])
  assert.deepEqual(json.hops, [{ principal: ALICE, allowed: true, evaluated: true, reasons: ['staff-tickets'], errors: [] }])
  assert.equal(json.policyVersion, d.policyVersion)
  assert.equal(JSON.parse(JSON.stringify(deny)).denyCause, 'no_permit')
  assert.ok(d instanceof ambit.Decision)
  // the parsed fields are frozen: a caller cannot change what a later read sees
  assert.throws(() => d.reasons.push('x'), TypeError)
  assert.throws(() => { d.toJSON().allowed = false }, TypeError)
  assert.deepEqual(d.reasons, ['staff-tickets'])
  assert.equal(typeof d.timestamp, 'number')
})

test('allowed is read from the text and always agrees with the parsed decision', () => {
  const authz = Authorizer.fromDir(HELPDESK)
  const agent = refundAgent(authz)
  const seen = new Set()
  for (const amount of [1, 120, 499, 500, 501, 900]) {
    for (const principal of [agent.uid, ALICE, 'Helpdesk::User::"bob"']) {
      const d = authz.authorize({ principal, action: 'issue_refund', resource: TICKET, context: { amount } })
      assert.equal(d.allowed, d.toJSON().allowed)
      assert.equal(d.allowed, d.denyCause === null)
      seen.add(d.allowed)
    }
  }
  assert.deepEqual([...seen].sort(), [false, true])
})

test('contexts JSON cannot carry are coded errors, never a crash or a silent change', () => {
  const authz = Authorizer.fromDir(HELPDESK)
  const agent = refundAgent(authz)
  const refund = (context) => authz.authorize({ principal: agent.uid, action: 'issue_refund', resource: TICKET, context })
  assert.equal(refund({ amount: 120 }).allowed, true)
  const cyclic = { amount: 1 }
  cyclic.self = cyclic
  // refused by the package's converter or by the core, always with a code (never by message)
  for (const context of [cyclic, { amount: 2n ** 64n }, { amount: 1, note: 'x\uD800' }, () => 1, { amount: 1.5 }, { amount: NaN }]) {
    assert.throws(() => refund(context), (e) => e.code === 'AMBIT_INVALID_REQUEST')
  }
  assert.equal(refund({ amount: 120n }).allowed, true, 'a BigInt within 64 bits is an exact Cedar Long')
  for (const request of [null, 'x', { principal: 1, action: 'read_ticket', resource: TICKET }, { principal: ALICE, resource: TICKET }]) {
    assert.throws(() => authz.authorize(request), (e) => e.code === 'AMBIT_INVALID_REQUEST')
  }
})

test('errors carry the stable code', () => {
  const authz = Authorizer.fromDir(HELPDESK)
  const cases = [
    [() => authz.authorize({ principal: 'alice', action: 'read_ticket', resource: TICKET }), 'AMBIT_INVALID_REQUEST'],
    [() => authz.authorize({ principal: ALICE, action: 'nope', resource: TICKET }), 'AMBIT_INVALID_REQUEST'],
    [() => authz.authorize({ principal: ALICE, action: 'issue_refund', resource: TICKET, context: { amount: 'x' } }), 'AMBIT_INVALID_REQUEST'],
    [() => authz.authorize({ principal: ALICE, action: 'read_ticket', resource: TICKET, entities: [{ uid: { type: 'X' } }] }), 'AMBIT_ENTITIES'],
    [() => authz.mintAgent({ parent: 'Helpdesk::User::"nobody"', task: 't', scopes: [], ttlSeconds: 10 }), 'AMBIT_INVALID_DELEGATION'],
    [() => authz.replacePolicies('permit(principal, action resource);'), 'AMBIT_RELOAD'],
    [() => Authorizer.fromDir('/does/not/exist'), 'AMBIT_IO'],
    [() => new Authorizer({ policies: 'permit(principal, action resource);', validation: 'off' }), 'AMBIT_POLICY_PARSE'],
    [() => new Authorizer({ schema: 'entity U = { x: Nope };', policies: 'permit(principal, action, resource);' }), 'AMBIT_SCHEMA'],
    [() => new Authorizer({ policies: 'permit(principal, action, resource);', entities: '[{', validation: 'off' }), 'AMBIT_ENTITIES'],
  ]
  for (const [fn, code] of cases) {
    assert.throws(fn, (e) => e instanceof Error && e.code === code, code)
  }
  assert.ok(ambit.errorCodes().includes('AMBIT_RELOAD'))
  assert.ok(ambit.denyCauses().includes('out_of_scope'))
})

test('lifecycle: mint, attenuate, revoke, expire', () => {
  const clock = new ManualClock(1800000000)
  const authz = Authorizer.fromDir(HELPDESK, {}, clock)
  const a1 = authz.mintAgent({ parent: SERVICE, task: 't', scopes: ['read_ticket', 'reply_ticket'], ttlSeconds: 900, resources: [TICKET], attributes: ACME })
  assert.deepEqual(a1.chain, [SERVICE, a1.uid])
  const a2 = authz.mintAgent({ parent: a1.uid, task: 'r', scopes: ['reply_ticket'], ttlSeconds: 5000, attributes: ACME })
  assert.equal(a2.expiresAt, a1.expiresAt)
  assert.throws(() => authz.mintAgent({ parent: a1.uid, task: 'w', scopes: ['issue_refund'], ttlSeconds: 10 }), { code: 'AMBIT_INVALID_DELEGATION' })
  assert.equal(authz.authorize({ principal: a2.uid, action: 'reply_ticket', resource: TICKET }).allowed, true)
  const tree = authz.delegationTree(SERVICE)
  assert.equal(tree.children[0].children[0].uid, a2.uid)
  // camelCase all the way down, as the Agent objects mintAgent returns
  assert.equal(tree.children[0].agent.expiresAt, a1.expiresAt)
  assert.equal(tree.children[0].agent.createdAt, a1.createdAt)
  assert.equal('expires_at' in tree.children[0].agent, false)
  assert.equal(authz.revoke(a1.uid), 2)
  assert.equal(authz.authorize({ principal: a2.uid, action: 'reply_ticket', resource: TICKET }).denyCause, 'revoked')
  const a3 = authz.mintAgent({ parent: SERVICE, task: 's', scopes: ['read_ticket'], ttlSeconds: 10, attributes: ACME })
  clock.advance(10)
  assert.equal(authz.authorize({ principal: a3.uid, action: 'read_ticket', resource: TICKET }).denyCause, 'expired')
})

test('reload and reloadAsync keep the last good', async () => {
  const dir = tmpCopy()
  const authz = Authorizer.fromDir(dir)
  const version = authz.policyVersion
  fs.writeFileSync(path.join(dir, 'zz.cedar'), 'permit(principal, action resource);')
  await assert.rejects(authz.reloadAsync(), (e) => e.code === 'AMBIT_RELOAD')
  assert.throws(() => authz.reload(), { code: 'AMBIT_RELOAD' })
  assert.equal(authz.policyVersion, version)
  fs.unlinkSync(path.join(dir, 'zz.cedar'))
  const outcome = await authz.reloadAsync()
  assert.equal(outcome.generation, 2)
})

test('audit: file, callback and verify', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ambit-audit-'))
  const log = path.join(dir, 'audit.jsonl')
  const seen = []
  const authz = Authorizer.fromDir(HELPDESK, { auditFile: log }, null, (record) => seen.push(record))
  const agent = refundAgent(authz)
  for (const amount of [10, 900]) authz.authorize({ principal: agent.uid, action: 'issue_refund', resource: TICKET, context: { amount } })
  authz.auditFlush()
  for (let i = 0; i < 100 && seen.length < 3; i++) await new Promise((r) => setTimeout(r, 10))
  assert.deepEqual(seen.map((r) => r.kind), ['agent_minted', 'decision', 'decision'])
  assert.equal(seen[2].deny_cause, 'forbidden')
  assert.deepEqual(authz.auditRecent(10).map((r) => r.seq), [1, 2, 3])
  const report = verifyAuditLog([log])
  assert.equal(report.ok, true)
  assert.equal(report.records, 3)
  const lines = fs.readFileSync(log, 'utf8').trim().split('\n')
  lines[1] = lines[1].replace('"allowed":true', '"allowed":false')
  fs.writeFileSync(log, lines.join('\n') + '\n')
  const bad = verifyAuditLog([log])
  assert.equal(bad.ok, false)
  assert.equal(bad.firstBadSeq, 2)
  assert.equal('first_bad_seq' in bad, false, 'the report is camelCase, as every Node shape')
  assert.equal(typeof report.lastHash, 'string')
})

test('guard: allow, deny, error denies', async () => {
  const authz = Authorizer.fromDir(HELPDESK)
  const agent = refundAgent(authz)
  const calls = []
  const refund = guard(
    async ({ ticket, amount }) => {
      calls.push(amount)
      return `refunded ${amount}`
    },
    { authz, action: 'issue_refund', principal: agent.uid, resource: (a) => `Helpdesk::Ticket::"${a.ticket}"`, context: (a) => ({ amount: a.amount }) },
  )
  assert.equal(await refund({ ticket: '4711', amount: 120 }), 'refunded 120')
  await assert.rejects(refund({ ticket: '4711', amount: 900 }), (e) => e instanceof AmbitDenied && e.decision.denyCause === 'forbidden')
  await assert.rejects(refund({ ticket: '4711', amount: 'lots' }), (e) => e instanceof AmbitDenied && e.decision === null && e.error.code === 'AMBIT_INVALID_REQUEST')
  const sync = guard((a) => a.amount, { authz, action: 'issue_refund', principal: agent.uid, resource: TICKET, context: (a) => ({ amount: a.amount }) })
  assert.equal(await sync({ amount: 5 }), 5)
  assert.deepEqual(calls, [120])
})

test('guardTool and MCP tools/call', async () => {
  const authz = Authorizer.fromDir(HELPDESK)
  const agent = refundAgent(authz)
  const executed = []
  const tool = { name: 'issue_refund', description: 'refund', execute: async (args) => { executed.push(args); return 'ok' } }
  const guarded = guardTool(tool, { authz, principal: agent.uid, resource: TICKET, context: (a) => ({ amount: a.amount }) })
  assert.equal(guarded.name, 'issue_refund')
  assert.equal(await guarded.execute({ amount: 100 }), 'ok')
  await assert.rejects(guarded.execute({ amount: 9000 }), AmbitDenied)
  await assert.rejects(guarded.execute({ amount: '1' }), AmbitDenied) // context does not fit: fail closed
  assert.deepEqual(executed, [{ amount: 100 }])
  const d = authorizeToolCall(authz, { params: { name: 'issue_refund', arguments: { amount: 900 } } }, { principal: agent.uid, resource: TICKET, context: (a) => ({ amount: a.amount }) })
  assert.equal(d.denyCause, 'forbidden')
})

test('batch and explain', () => {
  const authz = Authorizer.fromDir(HELPDESK)
  const [ok, bad] = authz.authorizeBatch([
    { principal: ALICE, action: 'read_ticket', resource: TICKET },
    { principal: 'nope', action: 'read_ticket', resource: TICKET },
  ])
  assert.equal(ok.allowed, true)
  assert.ok(ok instanceof ambit.Decision)
  // batch decisions are the same Decision as authorize gives, camelCase fields included
  assert.deepEqual(ok.reasons, ['staff-tickets'])
  assert.equal(ok.policyVersion, authz.policyVersion)
  assert.equal(bad.code, 'AMBIT_INVALID_REQUEST')
  const mixed = authz.authorizeBatch([null, { principal: ALICE, action: 'read_ticket', resource: TICKET, context: { n: 1n } }, { principal: ALICE, action: 'read_ticket', resource: TICKET }])
  assert.deepEqual(mixed.map((r) => r.code ?? r.allowed), ['AMBIT_INVALID_REQUEST', 'AMBIT_INVALID_REQUEST', true])
  assert.deepEqual(authz.authorizeBatch([]), [])
  // requests and answers cross as one text a line each: newlines, line separators and
  // non-ASCII text inside them are data, and every slot equals its one-call decision
  const odd = ['a\nb', '\r\n', '\u2028\u2029', 'é😀', '"\\', '']
  const many = odd.flatMap((t) => [
    { principal: `Helpdesk::User::"${t}"`, action: 'read_ticket', resource: TICKET, context: { note: t } },
    { principal: ALICE, action: 'read_ticket', resource: TICKET, context: { [t]: [t] } },
    { principal: ALICE, action: `read_ticket${t}`, resource: TICKET },
    { principal: ALICE, action: 'read_ticket', resource: TICKET },
    { principal: `Helpdesk::User::"${t}"`, action: 'read_ticket', resource: TICKET },
  ])
  many.push(...many, ...many, ...many, ...many) // 150: past 128, decided on several threads
  const answers = authz.authorizeBatch(many)
  assert.equal(answers.length, many.length)
  const same = (d) => (d instanceof ambit.Decision ? { ...d.toJSON(), decisionId: '', timestamp: 0 } : d)
  many.forEach((r, i) => {
    let one
    try {
      one = authz.authorize(r)
    } catch (e) {
      one = { code: e.code, message: e.message }
    }
    assert.deepEqual(same(answers[i]), same(one), JSON.stringify(r))
  })
  assert.ok(answers.some((a) => a.allowed === true) && answers.some((a) => a.allowed === false) && answers.some((a) => a.code))
  const e = authz.explain({ principal: 'Helpdesk::User::"bob"', action: 'read_ticket', resource: 'Helpdesk::Ticket::"9001"' })
  assert.match(e.summary, /^denied \(no_permit\)/)
  assert.ok(e.decision instanceof ambit.Decision)
  assert.equal(e.decision.denyCause, 'no_permit')
  assert.deepEqual(e.hops.map((h) => h.allowed), [false])
})

test('watch follows the files', async () => {
  const dir = tmpCopy()
  const authz = Authorizer.fromDir(dir)
  const reports = []
  authz.watch((r) => reports.push(r))
  const agent = refundAgent(authz)
  const req = { principal: agent.uid, action: 'issue_refund', resource: TICKET, context: { amount: 120 } }
  assert.equal(authz.authorize(req).allowed, true)
  const f = path.join(dir, 'refunds.cedar')
  fs.writeFileSync(f, fs.readFileSync(f, 'utf8').replace('> 500', '> 100'))
  const deadline = Date.now() + 20000
  while (authz.authorize(req).allowed) {
    assert.ok(Date.now() < deadline, 'reload not seen')
    await new Promise((r) => setTimeout(r, 50))
  }
  while (reports.length === 0) {
    assert.ok(Date.now() < deadline, 'no watch report')
    await new Promise((r) => setTimeout(r, 50))
  }
  // the core's report, the same keys as Python's watch callback gets
  assert.equal(reports.at(-1).ok, true)
  assert.equal(reports.at(-1).version, authz.policyVersion)
  assert.equal(typeof reports.at(-1).generation, 'number')
  const status = authz.watchStatus()
  assert.ok(status.reloads >= 1)
  assert.equal(status.lastVersion, authz.policyVersion)
  assert.equal('last_version' in status, false)
  authz.unwatch()
})

test('a failed watched reload reports its code, and a throwing callback is contained', async () => {
  const dir = tmpCopy()
  const authz = Authorizer.fromDir(dir)
  const reports = []
  const warnings = []
  const onWarning = (w) => warnings.push(w)
  process.on('warning', onWarning)
  authz.watch((r) => {
    reports.push(r)
    throw new Error('callback bug')
  })
  const before = authz.policyVersion
  fs.writeFileSync(path.join(dir, 'refunds.cedar'), 'permit(principal, action, resource')
  const deadline = Date.now() + 20000
  while (reports.length === 0 || warnings.length === 0) {
    assert.ok(Date.now() < deadline, 'no failed report')
    await new Promise((r) => setTimeout(r, 50))
  }
  process.off('warning', onWarning)
  authz.unwatch()
  assert.equal(reports[0].ok, false)
  assert.equal(reports[0].code, 'AMBIT_RELOAD')
  assert.match(reports[0].message, /refunds\.cedar/)
  assert.equal(authz.policyVersion, before, 'the last good policies keep serving')
  assert.equal(warnings[0].code, 'AMBIT_RELOAD')
  assert.throws(() => authz.watch(42), { code: 'AMBIT_INVALID_REQUEST' })
})

test('hostile strings: lone surrogates are refused, never turned into U+FFFD', () => {
  const authz = Authorizer.fromDir(HELPDESK)
  const lone = 'Helpdesk::User::"\uD800"'
  const bad = (fn) => assert.throws(fn, (e) => e.code === 'AMBIT_INVALID_REQUEST' && /lone surrogate/.test(e.message))
  bad(() => authz.authorize({ principal: lone, action: 'read_ticket', resource: TICKET }))
  bad(() => authz.authorize({ principal: ALICE, action: 'read_\uDC00ticket', resource: TICKET }))
  bad(() => authz.authorize({ principal: ALICE, action: 'read_ticket', resource: TICKET, onBehalfOf: [lone] }))
  bad(() => authz.mintAgent({ parent: SERVICE, task: 't\uD83D', scopes: ['read_ticket'], ttlSeconds: 60 }))
  bad(() => authz.mintAgent({ parent: SERVICE, task: 't', scopes: ['read_\uD800'], ttlSeconds: 60 }))
  bad(() => authz.revoke(lone))
  bad(() => authz.reinstate(lone))
  bad(() => authz.delegationTree(lone))
  bad(() => authz.replacePolicies('permit(principal == Helpdesk::User::"\uD800", action, resource);'))
  assert.throws(() => new Authorizer({ policies: 'permit(principal, action, resource) when { "\uDFFF" == "" };', validation: 'off' }),
    (e) => e.code === 'AMBIT_INVALID_REQUEST')
  // in a batch, the unreadable request is an error in its own slot; the others are decided
  const [first, second] = authz.authorizeBatch([
    { principal: lone, action: 'read_ticket', resource: TICKET },
    { principal: ALICE, action: 'read_ticket', resource: TICKET },
  ])
  assert.equal(first.code, 'AMBIT_INVALID_REQUEST')
  assert.equal(second.allowed, true)
  // well-formed look-alikes and U+FFFD itself are ordinary (unknown) principals: denied
  for (const p of ['Helpdesk::User::"\uFFFD"', 'Helpdesk::User::"\u0430lice"', 'Helpdesk::User::"😀"']) {
    const d = authz.authorize({ principal: p, action: 'read_ticket', resource: TICKET })
    assert.equal(d.allowed, false, p)
    assert.equal(d.denyCause, 'no_permit', p)
  }
  // Cedar refuses some invisible characters in ids: a coded error, never an allow
  assert.throws(() => authz.authorize({ principal: 'Helpdesk::User::"alice\u200B"', action: 'read_ticket', resource: TICKET }),
    (e) => e.code === 'AMBIT_INVALID_REQUEST')
  // NUL, empty and huge uids, and non-strings: errors, never a crash
  for (const p of ['', 'Helpdesk::User::"a\u0000"', `Helpdesk::User::"${'x'.repeat(100000)}"`, '"', 'Helpdesk::User::"\\"']) {
    assert.throws(() => authz.authorize({ principal: p, action: 'read_ticket', resource: TICKET }), (e) => /^AMBIT_/.test(e.code), p.slice(0, 40))
  }
  assert.throws(() => authz.authorize({ principal: Buffer.from([0xff, 0xfe]), action: 'read_ticket', resource: TICKET }))
})

test('audit records over the size limit are kept in short form', async () => {
  const seen = []
  const authz = new Authorizer(
    { policies: 'permit(principal, action, resource);', validation: 'off', auditIncludeContext: true, auditMaxRecordBytes: 1024 },
    null,
    (record) => seen.push(record),
  )
  authz.authorize({ principal: 'User::"u"', action: 'read', resource: 'Doc::"d"', context: { note: 'x'.repeat(5000) } })
  authz.authorize({ principal: 'User::"u"', action: 'read', resource: 'Doc::"d"', context: { note: 'short' } })
  authz.auditFlush()
  for (let i = 0; i < 100 && seen.length < 2; i++) await new Promise((r) => setTimeout(r, 10))
  assert.deepEqual(seen.map((r) => r.kind), ['oversize', 'decision'])
  assert.equal(seen[0].original_kind, 'decision')
  assert.equal(seen[0].allowed, true)
  assert.equal(seen[0].limit, 1024)
  assert.deepEqual(seen[1].context, { note: 'short' })
  assert.throws(() => new Authorizer({ policies: 'permit(principal, action, resource);', validation: 'lenient' }), (e) => e.code === 'AMBIT_CONFIG')
})

test('precheck gives the identity causes without a context', () => {
  const authz = Authorizer.fromDir(HELPDESK)
  const agent = authz.mintAgent({ parent: SERVICE, task: 't', scopes: ['issue_refund'], ttlSeconds: 900 })
  assert.equal(authz.precheck({ principal: agent.uid, action: 'issue_refund', resource: TICKET }), null)
  assert.throws(() => authz.authorize({ principal: agent.uid, action: 'issue_refund', resource: TICKET }), (e) => e.code === 'AMBIT_INVALID_REQUEST')
  assert.equal(authz.precheck({ principal: agent.uid, action: 'close_ticket', resource: TICKET }), 'out_of_scope')
  assert.equal(authz.precheck({ principal: 'Helpdesk::Agent::"ghost"', action: 'issue_refund', resource: TICKET }), 'unknown_principal')
  authz.revoke(SERVICE)
  assert.equal(authz.precheck({ principal: agent.uid, action: 'issue_refund', resource: TICKET }), 'revoked')
  assert.throws(() => authz.precheck({ principal: agent.uid, action: 'fly', resource: TICKET }), (e) => e.code === 'AMBIT_INVALID_REQUEST')
})

test('ManualClock can be set and read, as in Python and Rust', () => {
  const clock = new ManualClock(1800000000)
  assert.equal(clock.now(), 1800000000)
  clock.advance(60)
  assert.equal(clock.now(), 1800000060)
  clock.set(1900000000)
  assert.equal(clock.now(), 1900000000)
  assert.throws(() => clock.set(-1), (e) => e.code === 'AMBIT_INVALID_REQUEST')
  const authz = Authorizer.fromDir(HELPDESK, {}, clock)
  const agent = authz.mintAgent({ parent: SERVICE, task: 't', scopes: ['read_ticket'], ttlSeconds: 60 })
  assert.equal(agent.expiresAt, 1900000060)
  clock.set(1900000061)
  assert.equal(authz.authorize({ principal: agent.uid, action: 'read_ticket', resource: TICKET }).denyCause, 'expired')
})

test('Uid: checked once, accepted wherever a uid is', () => {
  const { Uid } = require('..')
  const u = Uid.parse('Helpdesk::User::"a\\"b"')
  assert.equal(u.type, 'Helpdesk::User')
  assert.equal(u.id, 'a"b')
  assert.equal(String(u), 'Helpdesk::User::"a\\"b"')
  assert.equal(JSON.stringify({ u }), JSON.stringify({ u: 'Helpdesk::User::"a\\"b"' }))
  assert.ok(u.equals(new Uid('Helpdesk::User', 'a"b')))
  assert.ok(u instanceof Uid)
  for (const bad of [() => new Uid('not a type', 'x'), () => Uid.parse('User::alice'), () => new Uid('User', 42), () => new Uid('User', '\ud800')]) {
    assert.throws(bad, { code: 'AMBIT_INVALID_REQUEST' })
  }
  const authz = Authorizer.fromDir(HELPDESK)
  const ticket = new Uid('Helpdesk::Ticket', '4711')
  const alice = new Uid('Helpdesk::User', 'alice')
  const byText = authz.authorize({ principal: 'Helpdesk::User::"alice"', action: 'read_ticket', resource: TICKET })
  const byUid = authz.authorize({ principal: alice, action: 'read_ticket', resource: ticket })
  assert.equal(byUid.allowed, true)
  assert.deepEqual({ ...byUid.toJSON(), decisionId: '', timestamp: 0 }, { ...byText.toJSON(), decisionId: '', timestamp: 0 })
  const agent = authz.mintAgent({ parent: new Uid('Helpdesk::Service', 'helpdesk'), task: 't', scopes: ['read_ticket'], ttlSeconds: 60, attributes: ACME })
  const agentUid = Uid.parse(agent.uid)
  assert.equal(authz.precheck({ principal: agentUid, action: 'read_ticket', resource: ticket }), null)
  assert.equal(authz.delegationTree(new Uid('Helpdesk::Service', 'helpdesk')).children[0].uid, agent.uid)
  assert.equal(authz.explain({ principal: agentUid, action: 'read_ticket', resource: ticket }).decision.allowed, true)
  assert.equal(authz.authorizeBatch([{ principal: agentUid, action: 'read_ticket', resource: ticket }])[0].allowed, true)
  assert.equal(authz.revoke(agentUid), 1)
  assert.equal(authz.authorize({ principal: agentUid, action: 'read_ticket', resource: ticket }).denyCause, 'revoked')
  // a Uid's text is the addon's: a toString patched onto it later is not what decides
  const patched = new Uid('Helpdesk::User', 'nobody')
  const patchedText = String(patched)
  patched.toString = () => 'Helpdesk::User::"alice"'
  assert.equal(authz.authorize({ principal: patched, action: 'read_ticket', resource: ticket }).allowed, false)
  assert.equal(authz.authorize({ principal: patched, action: 'read_ticket', resource: ticket }).chain[0], patchedText)
  // a lookalike object is not a uid: refused, never stringified
  const lookalike = { type: 'Helpdesk::User', id: 'alice', toString: () => 'Helpdesk::User::"alice"' }
  assert.throws(() => authz.authorize({ principal: lookalike, action: 'read_ticket', resource: ticket }), { code: 'AMBIT_INVALID_REQUEST' })
  assert.throws(() => authz.revoke(lookalike), { code: 'AMBIT_INVALID_REQUEST' })
})

test('check is one boolean path and fails closed', () => {
  const authz = Authorizer.fromDir(HELPDESK)
  const agent = refundAgent(authz)
  assert.equal(authz.check({ principal: ALICE, action: 'read_ticket', resource: TICKET }), true)
  for (const amount of [1, 120, 499, 500, 501, 900]) {
    const req = { principal: agent.uid, action: 'issue_refund', resource: ambit.Uid.parse(TICKET), context: { amount } }
    assert.equal(authz.check(req), authz.authorize(req).allowed)
  }
  const deny = { principal: 'Helpdesk::User::"bob"', action: 'read_ticket', resource: 'Helpdesk::Ticket::"9001"' }
  assert.equal(authz.check(deny), false)
  // a Decision is an object, truthy even when denied: that is why check exists
  assert.ok(authz.authorize(deny))
  // every error is false, never a throw
  for (const bad of [
    null,
    42,
    { principal: 'not a uid', action: 'read_ticket', resource: TICKET },
    { principal: ALICE, action: 'no_such_action', resource: TICKET },
    { principal: agent.uid, action: 'issue_refund', resource: TICKET, context: { amount: 'lots' } },
    { principal: agent.uid, action: 'issue_refund', resource: TICKET, context: { amount: () => 1 } },
    { principal: 5, action: 'read_ticket', resource: TICKET },
  ]) {
    assert.equal(authz.check(bad), false, JSON.stringify(bad))
  }
  authz.revoke(agent.uid)
  assert.equal(authz.check({ principal: agent.uid, action: 'issue_refund', resource: TICKET, context: { amount: 120 } }), false)
})
