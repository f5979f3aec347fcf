'use strict'
// The shared decision vectors (tests/vectors/*.json), run through the Node API.
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const crypto = require('node:crypto')
const { Authorizer, IssuerKey, ManualClock } = require('..')

const ROOT = path.resolve(__dirname, '..', '..')
const DIR = path.join(ROOT, 'tests', 'vectors')
const FILES = fs.readdirSync(DIR).filter((f) => f.endsWith('.json')).sort()
// a vector's options are the core's names; Node spells the same names in camelCase
const camel = (k) => k.replace(/_([a-z])/g, (_, c) => c.toUpperCase())

test('vectors exist', () => {
  assert.ok(FILES.length > 0, 'no decision vectors found in tests/vectors')
})

for (const file of FILES) {
  const spec = JSON.parse(fs.readFileSync(path.join(DIR, file), 'utf8'))
  for (const c of spec.cases) {
    test(`${file}: ${c.description}`, () => runCase(spec, c))
  }
}

/** A proof step (see ambit::vector::ProofStep): the standard proof, then the step's changes. */
function proof(step, token, now) {
  const key = IssuerKey.fromJwk('holder', JSON.stringify(step.key))
  const header = { typ: 'dpop+jwt', alg: key.algorithm, jwk: key.publicJwks().keys[0] }
  const ath = crypto.createHash('sha256').update(token).digest('base64url')
  const claims = { jti: step.jti ?? step.as, htm: step.method, htu: step.url, iat: step.iat ?? now, ath }
  if (step.nonce !== undefined) claims.nonce = step.nonce
  for (const [target, changes] of [[header, step.header ?? {}], [claims, step.claims ?? {}]]) {
    for (const [k, v] of Object.entries(changes)) {
      if (v === null) delete target[k]
      else target[k] = v
    }
  }
  return key.signJws(header, claims)
}

function runCase(spec, c) {
  const clock = new ManualClock(spec.now ?? 1800000000)
  const options = {}
  for (const [k, v] of Object.entries(spec.options ?? {})) {
    options[camel(k)] = v
  }
  const authz = Authorizer.fromDir(path.join(ROOT, spec.policies), options, clock)
  const names = {}
  const sub = (v) => (typeof v === 'string' && v.startsWith('$') && names[v.slice(1)] ? names[v.slice(1)] : v)
  ;(c.setup ?? []).forEach((step, i) => {
    let count
    try {
      if (step.mint) {
        const m = step.mint
        const agent = authz.mintAgent({
          parent: sub(m.parent), task: m.task ?? '', scopes: m.scopes ?? [], ttlSeconds: m.ttl_seconds ?? m.ttl,
          resources: m.resources, attributes: m.attributes,
        })
        names[m.as] = agent.uid
      } else if (step.revoke) count = authz.revoke(sub(step.revoke))
      else if (step.reinstate) authz.reinstate(sub(step.reinstate))
      else if (step.advance !== undefined) clock.advance(step.advance)
      else if (step.link) {
        const args = step.link.args ?? {}
        authz.link({ templateId: step.link.template_id, linkId: step.link.link_id, principal: sub(args['?principal']), resource: sub(args['?resource']) })
      } else if (step.unlink) authz.unlink(step.unlink)
      else if (step.replace_policies) authz.replacePolicies(step.replace_policies)
      else if (step.issue) {
        const key = IssuerKey.fromJwk(step.issue.issuer, JSON.stringify(step.issue.key))
        names[step.issue.as] = authz.issueCredential(sub(step.issue.agent), key, step.issue.holder)
      } else if (step.sign) {
        const key = IssuerKey.fromJwk(step.sign.issuer, JSON.stringify(step.sign.key))
        names[step.sign.as] = key.signJwt(step.sign.claims)
      } else if (step.proof) {
        names[step.proof.as] = proof(step.proof, sub(step.proof.token), clock.now())
      }
      else assert.fail(`setup step ${i} does nothing`)
    } catch (e) {
      if (!e.code || !e.code.startsWith('AMBIT_')) throw e
      assert.equal(e.code, step.expect_error, `setup step ${i}: ${e.message}`)
      return
    }
    assert.equal(step.expect_error, undefined, `setup step ${i}: expected ${step.expect_error}`)
    if (step.expect_count !== undefined) assert.equal(count, step.expect_count)
  })
  const r = c.request
  const e = c.expect
  const dpop = c.dpop ? { ...c.dpop, proof: sub(c.dpop.proof) } : undefined
  const decide = () => c.credential !== undefined
    ? authz.authorizeCredential({ credential: sub(c.credential), action: r.action, resource: sub(r.resource), context: r.context, dpop })
    : c.token !== undefined
      ? authz.authorizeToken({ token: sub(c.token), action: r.action, resource: sub(r.resource), context: r.context, dpop })
      : authz.authorize({
        principal: sub(r.principal), action: r.action, resource: sub(r.resource),
        context: r.context, entities: r.entities, onBehalfOf: r.on_behalf_of ? r.on_behalf_of.map(sub) : undefined,
      })
  let d
  try {
    for (let i = 1; i < (c.times ?? 1); i++) {
      try {
        decide()
      } catch {
        // only the last one is checked
      }
    }
    d = decide()
  } catch (err) {
    assert.equal(err.code, e.error, err.message)
    return
  }
  assert.equal(e.error, undefined, `expected ${e.error}, got a decision`)
  if (e.allowed !== undefined) assert.equal(d.allowed, e.allowed)
  if (e.deny_cause !== undefined) assert.equal(d.denyCause, e.deny_cause)
  if (e.reasons !== undefined) assert.deepEqual(d.reasons, e.reasons)
  if (e.deny_hop !== undefined) assert.equal(d.denyHop, e.deny_hop)
  if (e.errors !== undefined) assert.deepEqual(d.errors.map((x) => x.policyId), e.errors)
}
