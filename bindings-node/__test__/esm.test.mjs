import test from 'node:test'
import assert from 'node:assert/strict'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import ambit, { Authorizer, guard, AmbitDenied } from 'ambit'

const HELPDESK = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'policies', 'helpdesk')

test('ESM import works, named and default', () => {
  const authz = Authorizer.fromDir(HELPDESK)
  const d = authz.authorize({ principal: 'Helpdesk::User::"alice"', action: 'read_ticket', resource: 'Helpdesk::Ticket::"4711"' })
  assert.equal(d.allowed, true)
  assert.equal(ambit.Authorizer, Authorizer)
  assert.equal(typeof guard, 'function')
  assert.equal(typeof AmbitDenied, 'function')
})
