'use strict'
// The npm package `ambit`: the generated native binding (index.js) plus a little glue for
// agent runtimes. No policy logic lives here: every decision is the Rust core's.

const native = require('./index.js')

const { Authorizer } = native

/** An Error carrying a stable ambit code, as the native addon throws them. */
function coded(code, message) {
  const e = new Error(message)
  e.code = code
  return e
}

/** A context or entities value as JSON text for the addon; absent stays absent. */
function jsonText(value, what) {
  if (value === undefined || value === null) return undefined
  let text
  try {
    text = JSON.stringify(value)
  } catch (e) {
    throw coded('AMBIT_INVALID_REQUEST', `${what} cannot be sent as JSON: ${e.message}`)
  }
  if (text === undefined) throw coded('AMBIT_INVALID_REQUEST', `${what} is not a JSON value (${typeof value})`)
  return text
}

function checkRequest(request) {
  if (request === null || typeof request !== 'object') {
    throw coded('AMBIT_INVALID_REQUEST', 'a request is an object { principal, action, resource, context?, entities?, onBehalfOf? }')
  }
  for (const field of ['principal', 'action', 'resource']) {
    if (typeof request[field] !== 'string') throw coded('AMBIT_INVALID_REQUEST', `request.${field} must be a string`)
  }
}

function rawRequest(request) {
  checkRequest(request)
  return {
    principal: request.principal,
    action: request.action,
    resource: request.resource,
    context: jsonText(request.context, 'context'),
    entities: jsonText(request.entities, 'entities'),
    onBehalfOf: request.onBehalfOf ?? undefined,
  }
}

function deepFreeze(value) {
  if (value !== null && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v)
    Object.freeze(value)
  }
  return value
}

// The addon answers with the decision's camelCase JSON, `allowed` always its first field.
const ALLOWED = '{"allowed":true,'

/**
 * A decision: allowed, or denied with a stable `denyCause`. Made from the addon's JSON text:
 * `allowed` is read from the text's first field, the rest is parsed (once, frozen) when first
 * asked for, so a caller that only checks `allowed` pays for no parse.
 */
class Decision {
  #text
  #fields
  constructor(text) {
    this.#text = text
  }
  #all() {
    return (this.#fields ??= deepFreeze(JSON.parse(this.#text)))
  }
  get allowed() {
    return this.#text.startsWith(ALLOWED)
  }
  get decisionId() {
    return this.#all().decisionId
  }
  get denyCause() {
    return this.#all().denyCause
  }
  get denyHop() {
    return this.#all().denyHop
  }
  get reasons() {
    return this.#all().reasons
  }
  get chain() {
    return this.#all().chain
  }
  get hops() {
    return this.#all().hops
  }
  get errors() {
    return this.#all().errors
  }
  get action() {
    return this.#all().action
  }
  get resource() {
    return this.#all().resource
  }
  get policyVersion() {
    return this.#all().policyVersion
  }
  get generation() {
    return this.#all().generation
  }
  get timestamp() {
    return this.#all().timestamp
  }
  /** Every field as a plain (frozen) object: what `JSON.stringify` uses. */
  toJSON() {
    return this.#all()
  }
  [Symbol.for('nodejs.util.inspect.custom')]() {
    return `Decision ${this.#text}`
  }
}

/** Decides one request; a deny is a `Decision`, never a throw. */
Authorizer.prototype.authorize = function authorize(request) {
  checkRequest(request)
  const context = jsonText(request.context, 'context')
  const entities = jsonText(request.entities, 'entities')
  return new Decision(this.authorizeJson(request.principal, request.action, request.resource, context, entities, request.onBehalfOf ?? undefined))
}

/**
 * Decides many requests on one policy version; each slot is a `Decision` or an error object
 * `{ code, message }` (not thrown).
 */
Authorizer.prototype.authorizeBatch = function authorizeBatch(requests) {
  if (!Array.isArray(requests)) throw coded('AMBIT_INVALID_REQUEST', 'authorizeBatch takes an array of requests')
  const raw = requests.map((r) => {
    try {
      return rawRequest(r)
    } catch (e) {
      return e
    }
  })
  const sent = raw.filter((r) => !(r instanceof Error))
  const answers = this.authorizeBatchJson(sent)
  let next = 0
  return raw.map((r) => {
    if (r instanceof Error) return { code: r.code, message: r.message }
    const a = answers[next++]
    return typeof a === 'string' ? new Decision(a) : a
  })
}

/** Decides and explains, per hop; `decision` is the same `Decision` as `authorize` gives. */
Authorizer.prototype.explain = function explain(request) {
  const e = this.explainRaw(rawRequest(request))
  e.decision = new Decision(e.decision)
  return e
}

/** A guarded call was not allowed; `decision` is the deny, or null when an error denied it. */
class AmbitDenied extends Error {
  constructor(decision, error) {
    super(decision ? `denied: ${decision.denyCause}` : `denied: ${error && error.message}`)
    this.name = 'AmbitDenied'
    this.code = 'AMBIT_DENIED'
    this.decision = decision || null
    this.error = error || null
  }
}

/** `reload()` off the event loop; rejects with an Error whose `code` is the stable code. */
Authorizer.prototype.reloadAsync = async function reloadAsync() {
  const r = await this.reloadAsyncRaw()
  if (!r.ok) {
    const e = new Error(r.message)
    e.code = r.code
    throw e
  }
  return { version: r.version, generation: r.generation }
}

const value = (spec, args) => (typeof spec === 'function' ? spec(args) : spec)

function check(authz, args, opts) {
  let decision
  try {
    decision = authz.authorize({
      principal: value(opts.principal, args),
      action: value(opts.action, args),
      resource: value(opts.resource, args),
      context: value(opts.context, args) ?? undefined,
      entities: value(opts.entities, args) ?? undefined,
      onBehalfOf: value(opts.onBehalfOf, args) ?? undefined,
    })
  } catch (error) {
    throw new AmbitDenied(null, error) // fail closed: an error denies
  }
  if (!decision.allowed) throw new AmbitDenied(decision)
  return decision
}

/**
 * Wraps a tool function (sync or async). Options may be values or functions of the call's
 * first argument (the tool's arguments object). The wrapper always returns a promise.
 */
function guard(fn, opts) {
  return async function guarded(...callArgs) {
    check(opts.authz, callArgs[0] ?? {}, opts)
    return await fn.apply(this, callArgs)
  }
}

/**
 * Wraps a tool of the shape `{ name, description, execute(args) }` (Vercel AI SDK / MCP
 * style): every `execute` is authorized with the tool's name as action and its arguments as
 * context, unless `opts.action` / `opts.context` say otherwise.
 */
function guardTool(tool, opts) {
  const merged = {
    ...opts,
    action: opts.action ?? tool.name,
    context: opts.context ?? ((args) => args),
  }
  return { ...tool, execute: guard(tool.execute.bind(tool), merged) }
}

/** Maps an MCP `tools/call` request (`{ params: { name, arguments } }`) to a decision. */
function authorizeToolCall(authz, request, opts) {
  const args = (request.params && request.params.arguments) || {}
  return authz.authorize({
    principal: value(opts.principal, args),
    action: opts.action ?? request.params.name,
    resource: value(opts.resource, args),
    context: value(opts.context, args) ?? args,
    onBehalfOf: value(opts.onBehalfOf, args) ?? undefined,
  })
}

module.exports = { ...native, Decision, AmbitDenied, guard, guardTool, authorizeToolCall }
