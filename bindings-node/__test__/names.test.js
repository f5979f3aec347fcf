// The Node column of docs/api.md is exactly what the package exports: every name in the table
// resolves, and every public name of the package and its classes is in the table (the glue's
// native entry points, listed in the doc's last section, aside).
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const ambit = require('..')

const doc = fs.readFileSync(path.join(__dirname, '..', '..', 'docs', 'api.md'), 'utf8')
const names = doc.split('\n').flatMap((line) => {
  const cells = line.trim().replace(/^\||\|$/g, '').split('|').map((c) => c.trim())
  if (cells.length < 3 || cells[0] === 'Rust' || cells[0] === '---') return []
  const m = /^`([A-Za-z_][A-Za-z_0-9.]*)`$/.exec(cells[2])
  return m ? [m[1]] : []
})
const glue = new Set([...doc.slice(doc.indexOf('## Not in the table')).matchAll(/`([A-Za-z]+)`/g)].map((m) => m[1]))

test('the table has a Node column', () => {
  assert.ok(names.length > 50, `${names.length} names`)
})

test('every name in the table is exported', () => {
  const authz = ambit.Authorizer.fromDir(path.join(__dirname, '..', '..', 'policies', 'helpdesk'))
  const decision = authz.authorize({ principal: 'Helpdesk::User::"alice"', action: 'read_ticket', resource: 'Helpdesk::Ticket::"4711"' })
  const clock = new ambit.ManualClock(1)
  const instances = { Authorizer: authz, Decision: decision, ManualClock: clock, IssuerKey: ambit.IssuerKey.generate('i', 'k'), Uid: new ambit.Uid('User', 'u') }
  for (const name of names) {
    const [head, member] = name.split('.')
    assert.ok(head in ambit, `docs/api.md names ${head}, which the package does not export`)
    if (member === undefined) continue
    const found = ambit[head][member] !== undefined || (instances[head] !== undefined && member in instances[head])
    assert.ok(found, `docs/api.md names ${name}, which does not exist`)
  }
})

test('every exported name is in the table', () => {
  const listed = new Set(names)
  const missing = Object.keys(ambit).filter((n) => !n.startsWith('__') && !listed.has(n))
  const members = {
    // the package's class and the addon's class it extends
    Authorizer: [...Object.getOwnPropertyNames(ambit.Authorizer.prototype), ...Object.getOwnPropertyNames(Object.getPrototypeOf(ambit.Authorizer.prototype))],
    Decision: Object.getOwnPropertyNames(ambit.Decision.prototype),
    ManualClock: Object.getOwnPropertyNames(ambit.ManualClock.prototype),
    IssuerKey: Object.getOwnPropertyNames(ambit.IssuerKey.prototype),
    Uid: Object.getOwnPropertyNames(ambit.Uid.prototype),
  }
  for (const [cls, own] of Object.entries(members)) {
    for (const m of own) {
      if (m !== 'constructor' && !glue.has(m) && !listed.has(`${cls}.${m}`)) missing.push(`${cls}.${m}`)
    }
  }
  assert.deepEqual(missing, [], `exported but not in docs/api.md: ${missing.join(', ')}`)
})

test('the DenyCause type in ambit.d.ts is exactly the core causes', () => {
  const dts = fs.readFileSync(path.join(__dirname, '..', 'ambit.d.ts'), 'utf8')
  const block = dts.slice(dts.indexOf('export type DenyCause'), dts.indexOf('// END generated'))
  const typed = [...block.matchAll(/'([a-z_]+)'/g)].map((m) => m[1])
  assert.deepEqual(typed, ambit.denyCauses())
})
