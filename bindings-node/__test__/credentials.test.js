// Signed agent credentials across processes and languages (issue 17): a Python process mints
// an agent and issues its credential; this Node process, trusting only the issuer's public
// keys, decides with the credential alone, as if the agent were its own. Forged, untrusted and
// revoked credentials are denies with their cause.
const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { execFileSync } = require('node:child_process')
const { Authorizer, IssuerKey } = require('..')

const ROOT = path.resolve(__dirname, '..', '..')
const HELPDESK = path.join(ROOT, 'policies', 'helpdesk')
const SERVICE = 'Helpdesk::Service::"helpdesk"'
const TICKET = 'Helpdesk::Ticket::"4711"'
const ISSUER = 'https://helpdesk.example'
// the repository's virtualenv (make python-dev), or the Python the caller names
const PYTHON = process.env.AMBIT_PYTHON ?? path.join(ROOT, '.venv', 'bin', 'python')

const ISSUE = `
import json, sys
import ambit
key = ambit.IssuerKey.generate(${JSON.stringify(ISSUER)}, "k1")
authz = ambit.Authorizer.from_dir(sys.argv[1])
agent = authz.mint_agent('${SERVICE}', "ticket-4711", ["issue_refund"], 900,
                         attributes={"tenant": {"__entity": {"type": "Helpdesk::Tenant", "id": "acme"}}})
print(json.dumps({"credential": authz.issue_credential(agent.uid, key), "jwks": key.public_jwks(), "agent": agent.uid}))
`

test('a credential issued by a Python process decides in this Node process', () => {
  const out = JSON.parse(execFileSync(PYTHON, ['-c', ISSUE, HELPDESK], { encoding: 'utf8' }))
  const verifier = Authorizer.fromDir(HELPDESK, { trustedIssuers: [{ issuer: ISSUER, jwks: out.jwks }] })
  const ok = verifier.authorizeCredential({ credential: out.credential, action: 'issue_refund', resource: TICKET, context: { amount: 120 } })
  assert.equal(ok.allowed, true)
  assert.deepEqual(ok.chain, [SERVICE, out.agent])
  const no = verifier.authorizeCredential({ credential: out.credential, action: 'issue_refund', resource: TICKET, context: { amount: 900 } })
  assert.equal(no.denyCause, 'forbidden')
  assert.deepEqual(no.reasons, ['agent-refund-cap'])
  // the root revoked here reaches the agent the credential carries
  verifier.revoke(SERVICE)
  const cut = verifier.authorizeCredential({ credential: out.credential, action: 'issue_refund', resource: TICKET, context: { amount: 1 } })
  assert.equal(cut.denyCause, 'revoked')
  // a verifier that does not trust the issuer
  const other = Authorizer.fromDir(HELPDESK, { trustedIssuers: [{ issuer: ISSUER, jwks: IssuerKey.generate(ISSUER, 'k2').publicJwks() }] })
  assert.equal(other.authorizeCredential({ credential: out.credential, action: 'issue_refund', resource: TICKET, context: { amount: 1 } }).denyCause, 'untrusted_issuer')
})

test('issue, verify, revoke by jti, and forgeries in Node', () => {
  const key = IssuerKey.generate(ISSUER, 'k1')
  assert.equal(key.issuer, ISSUER)
  assert.equal(key.kid, 'k1')
  assert.equal(key.algorithm, 'EdDSA')
  const ec = IssuerKey.generate(ISSUER, 'ec1', 'ES256')
  assert.equal(ec.algorithm, 'ES256')
  assert.throws(() => IssuerKey.generate(ISSUER, 'k', 'HS256'), (e) => e.code === 'AMBIT_CONFIG')
  assert.deepEqual(IssuerKey.fromJwk(ISSUER, JSON.stringify(key.privateJwk())).publicJwks(), key.publicJwks())
  assert.throws(() => IssuerKey.fromJwk(ISSUER, '{}'), (e) => e.code === 'AMBIT_CONFIG')
  assert.throws(() => IssuerKey.generate(42, 'k'), (e) => e.code === 'AMBIT_INVALID_REQUEST')
  assert.throws(() => new IssuerKey(), (e) => e.code === 'AMBIT_INVALID_REQUEST')
  const issuer = Authorizer.fromDir(HELPDESK)
  const agent = issuer.mintAgent({ parent: SERVICE, task: 't', scopes: ['issue_refund'], ttlSeconds: 900, attributes: { tenant: { __entity: { type: 'Helpdesk::Tenant', id: 'acme' } } } })
  const credential = issuer.issueCredential(agent.uid, key)
  const verifier = Authorizer.fromDir(HELPDESK, { trustedIssuers: [{ issuer: ISSUER, jwks: key.publicJwks() }] })
  const decide = (c) => verifier.authorizeCredential({ credential: c, action: 'issue_refund', resource: TICKET, context: { amount: 5 } })
  assert.equal(decide(credential).allowed, true)
  const [h, p, s] = credential.split('.')
  const claims = JSON.parse(Buffer.from(p, 'base64url').toString())
  claims.chain[1].agent.scopes.push('close_ticket')
  assert.equal(decide(`${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${s}`).denyCause, 'invalid_token')
  const none = Buffer.from(JSON.stringify({ alg: 'none', typ: 'ambit+jwt', kid: 'k1' })).toString('base64url')
  assert.equal(decide(`${none}.${p}.`).denyCause, 'invalid_token')
  for (const bad of ['', 'a.b.c', 'x'.repeat(100000)]) assert.equal(decide(bad).denyCause, 'invalid_token')
  verifier.revokeCredential(JSON.parse(Buffer.from(p, 'base64url').toString()).jti)
  assert.equal(decide(credential).denyCause, 'revoked')
  assert.throws(() => Authorizer.fromDir(HELPDESK, { trustedIssuers: [{ issuer: ISSUER, jwks: { keys: [key.privateJwk()] } }] }), (e) => e.code === 'AMBIT_CONFIG')
})

test('a holder attenuates a credential for its sub-agent', () => {
  const key = IssuerKey.generate(ISSUER, 'k1')
  const workerKey = IssuerKey.generate('https://worker.example', 'w1')
  const acme = { tenant: { __entity: { type: 'Helpdesk::Tenant', id: 'acme' } } }
  const issuer = Authorizer.fromDir(HELPDESK)
  const holder = Authorizer.fromDir(HELPDESK, { trustedIssuers: [{ issuer: ISSUER, jwks: key.publicJwks() }] })
  const verifier = Authorizer.fromDir(HELPDESK, { trustedIssuers: [{ issuer: ISSUER, jwks: key.publicJwks() }, { issuer: 'https://worker.example', jwks: workerKey.publicJwks() }] })
  const agent = issuer.mintAgent({ parent: SERVICE, task: 't', scopes: ['issue_refund', 'read_ticket'], ttlSeconds: 900, attributes: acme })
  const token = issuer.issueCredential(agent.uid, key)
  const narrow = holder.attenuate({ credential: token, key: workerKey, task: 'refund-only', scopes: ['issue_refund'], ttlSeconds: 300, attributes: acme })
  assert.equal(verifier.authorizeCredential({ credential: narrow, action: 'issue_refund', resource: TICKET, context: { amount: 5 } }).allowed, true)
  assert.equal(verifier.authorizeCredential({ credential: narrow, action: 'read_ticket', resource: TICKET }).denyCause, 'out_of_scope')
  assert.throws(() => holder.attenuate({ credential: token, key: workerKey, task: 'x', scopes: ['close_ticket'], ttlSeconds: 300 }), (e) => e.code === 'AMBIT_INVALID_DELEGATION')
})

// OAuth access tokens (issue 17): a Python process signs a token-exchange token; this Node
// process, trusting only the identity provider's public keys, decides its act chain
const SIGN_TOKEN = `
import json, sys, time
import ambit
key = ambit.IssuerKey.generate("https://idp.example", "k1", alg="ES256")
now = int(time.time())
claims = {"iss": "https://idp.example", "aud": "https://helpdesk.example/api", "sub": "alice",
          "iat": now, "exp": now + 300, "act": {"sub": "helpdesk"}}
print(json.dumps({"token": key.sign_jwt(claims), "jwks": key.public_jwks()}))
`

test('an access token signed in Python decides its act chain in Node; bad tokens deny', () => {
  const out = JSON.parse(execFileSync(PYTHON, ['-c', SIGN_TOKEN], { encoding: 'utf8' }))
  const authz = Authorizer.fromDir(HELPDESK, {
    oauthIssuers: [{ issuer: 'https://idp.example', audience: 'https://helpdesk.example/api', jwks: out.jwks, principalType: 'Helpdesk::User', actorType: 'Helpdesk::Service' }]
  })
  const d = authz.authorizeToken({ token: out.token, action: 'issue_refund', resource: TICKET, context: { amount: 100 } })
  assert.equal(d.allowed, true)
  assert.deepEqual(d.chain, ['Helpdesk::User::"alice"', 'Helpdesk::Service::"helpdesk"'])
  const big = authz.authorizeToken({ token: out.token, action: 'issue_refund', resource: TICKET, context: { amount: 6000 } })
  assert.deepEqual([big.denyCause, big.denyHop], ['no_permit', 0])
  const [h, p] = out.token.split('.')
  assert.equal(authz.authorizeToken({ token: `${h}.${p}.AAAA`, action: 'read_ticket', resource: TICKET }).denyCause, 'invalid_token')
  const other = IssuerKey.generate('https://idp.example', 'k1', 'ES256')
  const forged = other.signJwt({ iss: 'https://idp.example', aud: 'https://helpdesk.example/api', sub: 'alice', exp: Math.floor(Date.now() / 1000) + 60 })
  assert.equal(authz.authorizeToken({ token: forged, action: 'read_ticket', resource: TICKET }).denyCause, 'invalid_token')
  assert.throws(() => authz.authorizeToken({ token: 7, action: 'read_ticket', resource: TICKET }), (e) => e.code === 'AMBIT_INVALID_REQUEST')
  assert.throws(() => Authorizer.fromDir(HELPDESK, { oauthIssuers: [{ issuer: 'x', audience: 'y', jwks: out.jwks, principalType: 'Helpdesk::User', actorType: 'Helpdesk::Service', algorithms: ['HS256'] }] }), (e) => e.code === 'AMBIT_CONFIG')
})

// Python mints and issues a credential bound to a holder key; this Node process holds that key
// (only its private JWK crossed over), proves possession per call with DPoP, and decides.
const ISSUE_BOUND = `
import json, sys
import ambit
key = ambit.IssuerKey.generate(${JSON.stringify(ISSUER)}, "k1")
holder = ambit.IssuerKey.generate("holder", "h", alg="ES256")
authz = ambit.Authorizer.from_dir(sys.argv[1])
agent = authz.mint_agent('${SERVICE}', "ticket-4711", ["issue_refund"], 900,
                         attributes={"tenant": {"__entity": {"type": "Helpdesk::Tenant", "id": "acme"}}})
cred = authz.issue_credential(agent.uid, key, holder=holder.thumbprint())
print(json.dumps({"credential": cred, "jwks": key.public_jwks(), "holder": holder.private_jwk(),
                  "jkt": ambit.jwk_thumbprint(holder.public_jwks()["keys"][0])}))
`

test('a credential bound in Python is used in Node only with DPoP proofs by the holder key', () => {
  const out = JSON.parse(execFileSync(PYTHON, ['-c', ISSUE_BOUND, HELPDESK], { encoding: 'utf8' }))
  const holder = IssuerKey.fromJwk('holder', JSON.stringify(out.holder))
  const { jwkThumbprint } = require('..')
  assert.equal(holder.thumbprint(), out.jkt, 'the same RFC 7638 thumbprint in both languages')
  assert.equal(jwkThumbprint(holder.publicJwks().keys[0]), out.jkt)
  assert.equal(jwkThumbprint(JSON.stringify(holder.publicJwks().keys[0])), out.jkt)
  const verifier = Authorizer.fromDir(HELPDESK, { trustedIssuers: [{ issuer: ISSUER, jwks: out.jwks }], dpop: { maxAgeSeconds: 30 } })
  const url = 'https://helpdesk.example/api/refunds'
  const refund = (dpop) => verifier.authorizeCredential({ credential: out.credential, action: 'issue_refund', resource: TICKET, context: { amount: 120 }, dpop })
  assert.equal(refund(undefined).denyCause, 'dpop_required')
  const dpop = { proof: holder.dpopProof('POST', url, out.credential), method: 'POST', url }
  assert.equal(refund(dpop).allowed, true)
  assert.equal(refund(dpop).denyCause, 'replayed')
  assert.equal(refund({ ...dpop, proof: holder.dpopProof('POST', url, out.credential), method: 'GET' }).denyCause, 'dpop_invalid')
  const thief = IssuerKey.generate('thief', 't', 'ES256')
  assert.equal(refund({ proof: thief.dpopProof('POST', url, out.credential), method: 'POST', url }).denyCause, 'dpop_invalid')
  // a nonce the server asks for, and a proof made long ago
  assert.equal(refund({ proof: holder.dpopProof('POST', url, out.credential), method: 'POST', url, nonce: 'n1' }).denyCause, 'dpop_invalid')
  assert.equal(refund({ proof: holder.dpopProof('POST', url, out.credential, 'n1'), method: 'POST', url, nonce: 'n1' }).allowed, true)
  const old = Math.floor(Date.now() / 1000) - 120
  assert.equal(refund({ proof: holder.dpopProof('POST', url, out.credential, undefined, old), method: 'POST', url }).denyCause, 'dpop_invalid')
  // a malformed dpop argument is a coded error, not a deny and not a crash
  for (const bad of [{ proof: 1, method: 'POST', url }, { proof: 'x', method: 'POST' }, { proof: 'x', method: 'POST', url, extra: 1 }, 'text']) {
    assert.throws(() => refund(bad), (e) => e.code === 'AMBIT_INVALID_REQUEST', JSON.stringify(bad))
  }
  assert.throws(() => holder.dpopProof('POST', 'not a url', out.credential), (e) => e.code === 'AMBIT_CONFIG')
  assert.throws(() => holder.dpopProof('POST', url, out.credential, undefined, -1), (e) => e.code === 'AMBIT_INVALID_REQUEST')
})
