// ambit from Node against @cedar-policy/cedar-wasm, on the same generated workload, in one run.
// Usage: node bindings-node/bench/bench.mjs WORKLOAD_DIR   (make bench exports the workload)
import fs from 'node:fs'
import path from 'node:path'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const { Authorizer, Uid } = require('../ambit.js')
const dir = process.argv[2] ?? 'target/bench-workload/p100'
const schema = fs.readFileSync(path.join(dir, 'schema.cedarschema'), 'utf8')
const policies = fs.readFileSync(path.join(dir, 'policies.cedar'), 'utf8')
const entitiesText = fs.readFileSync(path.join(dir, 'entities.json'), 'utf8')
const entities = JSON.parse(entitiesText)
const requests = JSON.parse(fs.readFileSync(path.join(dir, 'requests.json'), 'utf8')).slice(0, 200)

function perCall(fn, items, budgetMs = 1000) {
  for (const it of items) fn(it) // warm-up: JIT, caches, first-call costs stay out of the timing
  let calls = 0
  const start = process.hrtime.bigint()
  while (calls === 0 || Number(process.hrtime.bigint() - start) / 1e6 < budgetMs) {
    for (const it of items) fn(it)
    calls += items.length
  }
  return Number(process.hrtime.bigint() - start) / 1e3 / calls // µs
}

const authz = new Authorizer({ schema, policies, entities: entitiesText })
const rows = [['ambit (native addon)', perCall((r) => authz.authorize(r), requests)]]
// uids parsed once, kept native: what a caller holding Uid objects pays per call
const typed = requests.map((r) => ({ ...r, principal: Uid.parse(r.principal), resource: Uid.parse(r.resource) }))
const tTyped = perCall((r) => authz.authorize(r), typed)
rows.push(['ambit with Uid', tTyped])
// the whole list in one call: per decision
const batch = perCall((rs) => authz.authorizeBatch(rs), [requests]) / requests.length
rows.push(['ambit authorizeBatch, per decision', batch])
let fastestPeer

let cedar
try {
  cedar = require('@cedar-policy/cedar-wasm/nodejs')
} catch {
  console.log('@cedar-policy/cedar-wasm is not installed (npm ci in bindings-node)')
}
if (cedar) {
  const uid = (s) => {
    const m = /^(.*)::"(.*)"$/.exec(s)
    return { type: m[1], id: m[2] }
  }
  const call = (r) => ({
    principal: uid(r.principal),
    action: { type: 'Desk::Action', id: r.action },
    resource: uid(r.resource),
    context: r.context,
  })
  const calls = requests.map(call)
  const stateless = (c) => cedar.isAuthorized({ ...c, policies: { staticPolicies: policies }, entities, schema })
  const first = stateless(calls[0])
  if (first.type !== 'success') throw new Error(JSON.stringify(first))
  rows.push(['cedar-wasm isAuthorized (everything per call)', perCall(stateless, calls.slice(0, 20), 2000)])
  if (cedar.preparsePolicySet && cedar.statefulIsAuthorized) {
    cedar.preparsePolicySet('bench', { staticPolicies: policies })
    cedar.preparseSchema && cedar.preparseSchema('bench', schema)
    const stateful = (c) => cedar.statefulIsAuthorized({ ...c, preparsedPolicySetId: 'bench', preparsedSchemaName: 'bench', entities, validateRequest: false })
    rows.push(['cedar-wasm statefulIsAuthorized', perCall(stateful, calls.slice(0, 50), 2000)])
    // each request's own entities (principal and resource), picked once, outside the timing
    const same = (e, u) => e.uid.type === u.type && e.uid.id === u.id
    const owned = calls.map((c) => ({ ...c, preparsedPolicySetId: 'bench', preparsedSchemaName: 'bench',
      entities: entities.filter((e) => same(e, c.principal) || same(e, c.resource)), validateRequest: false }))
    for (const [i, o] of owned.slice(0, 50).entries()) {
      const r = cedar.statefulIsAuthorized(o)
      if (r.type !== 'success') throw new Error(JSON.stringify(r))
      // sanity: both engines agree on the decisions they are timed on
      if ((r.response.decision === 'allow') !== authz.authorize(requests[i]).allowed) throw new Error(`disagree: ${JSON.stringify(requests[i])}`)
    }
    fastestPeer = perCall((o) => cedar.statefulIsAuthorized(o), owned, 1000)
    rows.push(["cedar-wasm stateful, request's entities only (fastest)", fastestPeer])
  }
}
const base = rows[0][1]
console.log(`workload: ${dir} (${(policies.match(/@id\(/g) || []).length} policies, ${requests.length} requests)`)
console.log('| engine | per decision | ratio to ambit |')
console.log('| --- | --- | --- |')
for (const [name, us] of rows) console.log(`| ${name} | ${us.toFixed(2)} µs | ${(us / base).toFixed(1)}× |`)
// issue 19's goals for the binding, each met or missed
console.log('\n| goal (issue 19) | measured | |')
console.log('| --- | --- | --- |')
const goal = (text, measured, met) => console.log(`| ${text} | ${measured} | ${met ? 'met' : '**missed**'} |`)
const rustFile = path.join(dir, 'rust.json')
if (fs.existsSync(rustFile)) {
  const rust = JSON.parse(fs.readFileSync(rustFile, 'utf8')).per_decision_us
  const over = tTyped - rust
  goal('≤ 1.5 µs over Rust per call, with Uid', `${over >= 0 ? '+' : ''}${over.toFixed(2)} µs (Rust ${rust.toFixed(2)} µs)`, over <= 1.5)
} else {
  goal('≤ 1.5 µs over Rust per call, with Uid', 'no rust.json (run export-workload)', false)
}
goal('authorizeBatch ≥ 1.3× faster per decision than single calls', `${(base / batch).toFixed(2)}×`, base / batch >= 1.3)
if (fastestPeer !== undefined) goal("≥ 80× cedar-wasm's fastest mode", `${(fastestPeer / base).toFixed(1)}×`, fastestPeer / base >= 80)
