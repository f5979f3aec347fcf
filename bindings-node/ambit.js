'use strict'
// The npm package `ambit`: the generated native binding (index.js) plus a little glue for
// agent runtimes. No policy logic lives here: every decision is the Rust core's.

const native = require('./index.js')

/**
 * The user's audit callback, made safe for the host: it gets the record parsed from JSON (keys
 * such as `__proto__` stay data), and whatever it throws or rejects is reported as a warning
 * instead of ending the process.
 */
function safeCallback(callback, what = 'audit', code = 'AMBIT_AUDIT') {
  if (callback === undefined || callback === null) return undefined
  if (typeof callback !== 'function') throw coded('AMBIT_INVALID_REQUEST', `the ${what} callback must be a function`)
  const report = (error) => {
    try {
      process.emitWarning(`ambit ${what} callback failed: ${error && error.message ? error.message : String(error)}`, { code })
    } catch {
      // nothing left to tell
    }
  }
  return (text) => {
    try {
      const result = callback(JSON.parse(text))
      if (result !== null && typeof result === 'object' && typeof result.then === 'function') result.then(undefined, report)
    } catch (error) {
      report(error)
    }
  }
}

// Authorizers with an audit trail, flushed when the process exits (`process.exit()` included)
const audited = new Set()
let exitHooked = false
function track(authz) {
  audited.add(new WeakRef(authz))
  if (!exitHooked) {
    exitHooked = true
    process.on('exit', () => {
      for (const ref of audited) {
        const a = ref.deref()
        if (a !== undefined) {
          try {
            a.close()
          } catch {
            // exiting: nothing more to do
          }
        }
      }
    })
  }
  return authz
}

/**
 * Runs a glue call; an error napi raised while converting what the glue hands the addon
 * becomes AMBIT_INVALID_REQUEST, so every error from every entry point carries an ambit code.
 * (The addon's public methods convert their own arguments and throw ambit codes themselves.)
 */
function coding(call) {
  try {
    return call()
  } catch (e) {
    throw recode(e)
  }
}

function recode(e) {
  if (e !== null && typeof e === 'object' && typeof e.code === 'string' && e.code.startsWith('AMBIT_')) return e
  return coded('AMBIT_INVALID_REQUEST', e && e.message ? e.message : String(e))
}

// Each `Uid`'s text, asked of the addon once: a Uid is immutable, and a call into the addon per
// use cost more than the rest of reading a request. Taken with the addon's own `toString`, so
// a method patched onto an instance or the prototype later is not what decides.
const uidTexts = new WeakMap()
const uidToString = native.Uid.prototype.toString

/** A `Uid` as the uid text the core takes; anything else unchanged (and checked where it is used). */
function uidText(v) {
  if (!(v instanceof native.Uid)) return v
  let text = uidTexts.get(v)
  if (text === undefined) {
    text = uidToString.call(v)
    uidTexts.set(v, text)
  }
  return text
}

/** An Error carrying a stable ambit code, as the native addon throws them. */
function coded(code, message) {
  const e = new Error(message)
  e.code = code
  return e
}

// Nesting the converter follows at most (the core's own depth limit is checked again).
const MAX_NESTING = 256
const I64_MIN = -(2n ** 63n)
const I64_MAX = 2n ** 63n - 1n

/** An own property's value, never an inherited one (`Object.prototype.entities` is not a field). */
function own(object, key) {
  return Object.prototype.hasOwnProperty.call(object, key) ? object[key] : undefined
}

/**
 * A context or entities value as JSON text for the addon; absent stays absent. Every value is
 * converted faithfully or refused with AMBIT_INVALID_REQUEST: nothing `JSON.stringify` would
 * drop or change (undefined, functions, symbols, `toJSON`, getters, holes, class instances,
 * non-finite or unsafe numbers, lone surrogates) gets through, and only own data properties
 * are read, so the core decides on exactly what the caller holds.
 */
function jsonText(value, what) {
  if (value === undefined || value === null) return undefined
  // `path`: the keys and indices down to the value being written, made text only for an
  // error; `open`: the objects being written, innermost last (a cycle returns to one of them)
  return writeJson(value, { what, path: [], open: [] })
}

function refuseJson(state, why) {
  const where = state.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${p}`)).join('')
  throw coded('AMBIT_INVALID_REQUEST', `${state.what}${where}: ${why}`)
}

function writeJson(v, state) {
  switch (typeof v) {
    case 'string':
      if (!v.isWellFormed()) refuseJson(state, 'a string with a lone surrogate')
      return JSON.stringify(v)
    case 'number':
      if (!Number.isFinite(v)) refuseJson(state, `${v} is not a JSON number`)
      if (Number.isInteger(v) && !Number.isSafeInteger(v)) refuseJson(state, `${v} is not exact as a number: pass a BigInt`)
      return JSON.stringify(v)
    case 'bigint':
      if (v < I64_MIN || v > I64_MAX) refuseJson(state, `${v} is outside Cedar's 64-bit integers`)
      return v.toString()
    case 'boolean':
      return v ? 'true' : 'false'
    case 'object':
      break
    default:
      return refuseJson(state, `a ${typeof v} is not a JSON value`)
  }
  if (v === null) return 'null'
  const open = state.open
  if (open.length >= MAX_NESTING) throw coded('AMBIT_LIMIT', `${state.what} nests deeper than ${MAX_NESTING} levels`)
  if (open.includes(v)) refuseJson(state, 'a cycle')
  if (Object.getOwnPropertySymbols(v).length > 0) refuseJson(state, 'symbol-keyed properties')
  open.push(v)
  const path = state.path
  let out
  if (Array.isArray(v)) {
    out = '['
    for (let i = 0; i < v.length; i++) {
      path.push(i)
      const d = Object.getOwnPropertyDescriptor(v, i)
      if (d === undefined) refuseJson(state, 'a hole in an array')
      if (!('value' in d)) refuseJson(state, 'an accessor property')
      out += i === 0 ? writeJson(d.value, state) : `,${writeJson(d.value, state)}`
      path.pop()
    }
    out += ']'
  } else {
    const proto = Object.getPrototypeOf(v)
    if (proto !== Object.prototype && proto !== null) refuseJson(state, 'not a plain object')
    out = '{'
    const keys = Object.getOwnPropertyNames(v)
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]
      if (!key.isWellFormed()) refuseJson(state, 'a key with a lone surrogate')
      path.push(key)
      const d = Object.getOwnPropertyDescriptor(v, key)
      if (!d.enumerable) refuseJson(state, 'a non-enumerable property')
      if (!('value' in d)) refuseJson(state, 'an accessor property')
      if (key === 'toJSON') refuseJson(state, 'a toJSON property')
      out += `${i === 0 ? '' : ','}${JSON.stringify(key)}:${writeJson(d.value, state)}`
      path.pop()
    }
    out += '}'
  }
  open.pop()
  return out
}

// the core's list (`wire::REQUEST_FIELDS`), in camelCase: one definition for every language
const REQUEST_FIELDS = new Set(native.requestFields())

/**
 * The request's fields, read once each, own properties only. A field the request format does
 * not have is refused, as the core's wire format refuses it: a misspelt `contxt` must not
 * silently decide without the context a forbid reads.
 */
function fields(request) {
  if (request === null || typeof request !== 'object') {
    throw coded('AMBIT_INVALID_REQUEST', 'a request is an object { principal, action, resource, context?, entities?, onBehalfOf? }')
  }
  for (const key of Object.keys(request)) {
    if (!REQUEST_FIELDS.has(key)) {
      throw coded('AMBIT_INVALID_REQUEST', `unknown request field \`${key}\` (a request has ${[...REQUEST_FIELDS].join(', ')})`)
    }
  }
  const r = {
    principal: uidText(own(request, 'principal')),
    action: own(request, 'action'),
    resource: uidText(own(request, 'resource')),
    context: own(request, 'context'),
    entities: own(request, 'entities'),
    onBehalfOf: own(request, 'onBehalfOf'),
  }
  for (const field of ['principal', 'action', 'resource']) {
    if (typeof r[field] !== 'string') throw coded('AMBIT_INVALID_REQUEST', `request.${field} must be a string`)
  }
  if (r.onBehalfOf !== undefined && r.onBehalfOf !== null) {
    if (!Array.isArray(r.onBehalfOf)) throw coded('AMBIT_INVALID_REQUEST', 'request.onBehalfOf must be an array of uids')
    r.onBehalfOf = Array.from(r.onBehalfOf, uidText)
    if (!r.onBehalfOf.every((d) => typeof d === 'string')) {
      throw coded('AMBIT_INVALID_REQUEST', 'request.onBehalfOf must be an array of uids (strings or Uid)')
    }
  } else {
    r.onBehalfOf = undefined
  }
  return r
}

/**
 * One request of a batch as one line of the request wire format's JSON for the addon: no raw
 * newline can occur in it (`JSON.stringify` and `jsonText` escape every control character).
 */
function requestLine(request) {
  const r = fields(request)
  let line = `{"principal":${JSON.stringify(r.principal)},"action":${JSON.stringify(r.action)},"resource":${JSON.stringify(r.resource)}`
  const context = jsonText(r.context, 'context')
  if (context !== undefined) line += `,"context":${context}`
  const entities = jsonText(r.entities, 'entities')
  if (entities !== undefined) line += `,"entities":${entities}`
  if (r.onBehalfOf !== undefined) line += `,"on_behalf_of":${JSON.stringify(r.onBehalfOf)}`
  return `${line}}`
}

function rawRequest(request) {
  const r = fields(request)
  return {
    principal: r.principal,
    action: r.action,
    resource: r.resource,
    context: jsonText(r.context, 'context'),
    entities: jsonText(r.entities, 'entities'),
    onBehalfOf: r.onBehalfOf,
  }
}

function deepFreeze(value) {
  if (value !== null && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v)
    Object.freeze(value)
  }
  return value
}

const DECIDED = Symbol('ambit.decided')

// Where the addon writes a decision's `allowed` (1 or 0) beside the JSON text it returns: one
// byte written in place costs nothing, where an object `{ allowed, json }` per decision cost ~1 µs
// of V8 property definition. Read right after the synchronous call that wrote it (JS runs one
// call at a time on this thread; each worker thread loads its own copy of this module).
const ALLOWED = new Uint8Array(1)

/** The `Decision` of a one-decision call of the addon, made with `ALLOWED` as its slot. */
function decided(call) {
  ALLOWED[0] = 2 // neither: a call that returned without writing it is not read as a deny or an allow
  const text = coding(call)
  const allowed = ALLOWED[0]
  if (allowed > 1) throw coded('AMBIT_INTERNAL', 'the addon returned a decision without its allowed')
  return new Decision(allowed === 1, text, DECIDED)
}

/**
 * A decision: allowed, or denied with a stable `denyCause`. `allowed` is the core's boolean as
 * the addon hands it over; every other field comes from the core's camelCase JSON of the same
 * decision, parsed (once, frozen) when first asked for, so a caller that only checks `allowed`
 * pays for no parse.
 */
class Decision {
  #allowed
  #text
  #fields
  constructor(allowed, text, token) {
    // only this module holds the token: a caller cannot make a Decision of its own
    if (token !== DECIDED || typeof allowed !== 'boolean' || typeof text !== 'string') {
      throw coded('AMBIT_INVALID_REQUEST', 'decisions are made by an Authorizer')
    }
    this.#allowed = allowed
    this.#text = text
  }
  #all() {
    return (this.#fields ??= deepFreeze(JSON.parse(this.#text)))
  }
  get allowed() {
    return this.#allowed
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

/** Refuses more request entities than the authorizer accepts, before converting any of them. */
function entityCount(authz, entities) {
  if (Array.isArray(entities) && entities.length > authz.maxRequestEntities) {
    throw coded('AMBIT_LIMIT', `${entities.length} request entities, more than the limit of ${authz.maxRequestEntities}`)
  }
}

/** A credential or token request's fields: `{ [kind], action, resource, context?, dpop? }`. */
function bearerRequest(request, kind) {
  if (request === null || typeof request !== 'object') {
    throw coded('AMBIT_INVALID_REQUEST', `a ${kind} request is an object { ${kind}, action, resource, context?, dpop? }`)
  }
  const r = { [kind]: own(request, kind), action: own(request, 'action'), resource: uidText(own(request, 'resource')) }
  for (const field of [kind, 'action', 'resource']) {
    if (typeof r[field] !== 'string') throw coded('AMBIT_INVALID_REQUEST', `request.${field} must be a string`)
  }
  return [r[kind], r.action, r.resource, jsonText(own(request, 'context'), 'context'), jsonText(own(request, 'dpop'), 'dpop')]
}

/** A mint's options as the addon takes them, attributes as JSON text. */
function mintOptions(options, what, shape) {
  if (options === null || typeof options !== 'object') throw coded('AMBIT_INVALID_REQUEST', `${what} takes an options object ${shape}`)
  return {
    parent: uidText(own(options, 'parent')),
    task: own(options, 'task'),
    scopes: own(options, 'scopes'),
    ttlSeconds: own(options, 'ttlSeconds'),
    resources: own(options, 'resources'),
  }
}

// the directory `Authorizer.fromDir` builds from, handed to the constructor it calls (both run
// synchronously, so no other construction can see it)
let fromDirPath

/**
 * The in-process authorizer: the addon's class, plus the glue that reads request objects
 * (own properties only, values converted faithfully or refused) and makes callbacks safe.
 * Decisions, errors and every shape are the core's.
 */
class Authorizer extends native.Authorizer {
  constructor(options, clock, onAudit) {
    const dir = fromDirPath
    fromDirPath = undefined
    try {
      super(options, clock, safeCallback(onAudit), dir)
    } catch (e) {
      throw recode(e)
    }
    track(this)
  }

  /** Every `*.cedarschema`, `*.cedar` and an optional `entities.json` in `path`. */
  static fromDir(path, options, clock, onAudit) {
    if (typeof path !== 'string') throw coded('AMBIT_INVALID_REQUEST', 'fromDir takes a directory path (a string)')
    fromDirPath = path
    try {
      return new Authorizer(options, clock, onAudit)
    } finally {
      fromDirPath = undefined
    }
  }

  /** Decides one request; a deny is a `Decision`, never a throw. */
  authorize(request) {
    const r = fields(request)
    entityCount(this, r.entities)
    const context = jsonText(r.context, 'context')
    const entities = jsonText(r.entities, 'entities')
    return decided(() => this.authorizeRaw(ALLOWED, r.principal, r.action, r.resource, context, entities, r.onBehalfOf))
  }

  /**
   * Whether the request is allowed, on one path: a deny and every error (a malformed request
   * included) are `false`. A `Decision` is an object, and every object is truthy in JS, so
   * `if (authz.authorize(r))` would read every deny as an allow: branch on `check(r)` or on
   * `authorize(r).allowed`.
   */
  check(request) {
    try {
      return this.authorize(request).allowed === true
    } catch {
      return false
    }
  }

  /** Decides for the agent a signed credential carries: `{ credential, action, resource, context?, dpop? }`. */
  authorizeCredential(request) {
    const args = bearerRequest(request, 'credential')
    return decided(() => this.authorizeCredentialRaw(ALLOWED, ...args))
  }

  /** Decides for an OAuth access token: `{ token, action, resource, context?, dpop? }`. */
  authorizeToken(request) {
    const args = bearerRequest(request, 'token')
    return decided(() => this.authorizeTokenRaw(ALLOWED, ...args))
  }

  /**
   * Decides many requests on one policy version; each slot is a `Decision` or an error object
   * `{ code, message }` (not thrown).
   */
  authorizeBatch(requests) {
    if (!Array.isArray(requests)) throw coded('AMBIT_INVALID_REQUEST', 'authorizeBatch takes an array of requests')
    // a request the glue cannot read is an error in its slot; the others go to the addon as
    // one text, a line each, and come back as one text, a line each
    const out = new Array(requests.length)
    const lines = []
    for (let i = 0; i < requests.length; i++) {
      try {
        lines.push(requestLine(requests[i]))
      } catch (e) {
        const r = recode(e)
        out[i] = { code: r.code, message: r.message }
      }
    }
    if (lines.length === 0) return out
    const allowed = new Uint8Array(lines.length).fill(3) // 3: written by nobody
    const answers = coding(() => this.authorizeBatchRaw(allowed, lines.join('\n'))).split('\n')
    if (answers.length !== lines.length) throw coded('AMBIT_INTERNAL', `${lines.length} requests, ${answers.length} answers`)
    let next = 0
    for (let i = 0; i < out.length; i++) {
      if (out[i] !== undefined) continue
      const flag = allowed[next]
      const text = answers[next++]
      if (flag === 2) {
        const e = JSON.parse(text)
        out[i] = { code: e.code, message: e.message }
      } else if (flag <= 1) {
        out[i] = new Decision(flag === 1, text, DECIDED)
      } else {
        throw coded('AMBIT_INTERNAL', 'the addon returned a batch answer without its allowed')
      }
    }
    return out
  }

  /** Decides and explains, per hop; `decision` is the same `Decision` as `authorize` gives. */
  explain(request) {
    const r = rawRequest(request)
    const e = coding(() => this.explainRaw(r))
    e.decision = new Decision(e.decision.allowed, e.decision.json, DECIDED)
    return e
  }

  /** The identity checks of a decision without its policies; uids as text or `Uid`. */
  precheck(request) {
    const r = fields(request)
    return coding(() => this.precheckRaw({ principal: r.principal, action: r.action, resource: r.resource, onBehalfOf: r.onBehalfOf }))
  }

  /** Mints a just-in-time agent; attributes are converted faithfully or refused. */
  mintAgent(options) {
    const plain = mintOptions(options, 'mintAgent', '{ parent, task, scopes, ttlSeconds, resources?, attributes? }')
    const attributes = jsonText(own(options, 'attributes'), 'attributes')
    return coding(() => this.mintAgentRaw(plain, attributes))
  }

  /**
   * A narrower credential for a sub-agent of the agent a credential carries:
   * `{ credential, key, task, scopes, ttlSeconds, resources?, attributes? }`, signed with `key`.
   */
  attenuate(options) {
    const plain = mintOptions(options, 'attenuate', '{ credential, key, task, scopes, ttlSeconds, resources?, attributes? }')
    plain.parent = ''
    const attributes = jsonText(own(options, 'attributes'), 'attributes')
    return coding(() => this.attenuateRaw(own(options, 'credential'), plain, attributes, own(options, 'key')))
  }

  /** The members of a tool's arguments that the action's context type declares. */
  contextFor(action, args) {
    const text = jsonText(args ?? {}, 'arguments')
    return JSON.parse(coding(() => this.contextForJson(action, text)))
  }

  /** The last `n` audit records (after a flush), as plain objects. */
  auditRecent(n) {
    return JSON.parse(coding(() => this.auditRecentJson(n)))
  }

  /**
   * Follows the policy files; `callback(report)` gets each reload's `{ ok, version, generation }`
   * or `{ ok: false, code, message }`, as Python's `watch(callback)` does.
   */
  watch(callback) {
    const safe = safeCallback(callback, 'watch', 'AMBIT_RELOAD')
    return coding(() => this.watchRaw(safe))
  }

  /** `reload()` off the event loop; rejects with an Error whose `code` is the stable code. */
  async reloadAsync() {
    const r = await this.reloadAsyncRaw()
    if (!r.ok) throw coded(r.code, r.message)
    return { version: r.version, generation: r.generation }
  }
}

/** Why a guarded call was denied, in words an agent can act on: the cause and the policies. */
function deniedMessage(decision, error) {
  if (!decision) return `denied: ${error && error.message}`
  const reasons = decision.reasons.map((r) => `\`${r}\``).join(', ')
  return `denied (${decision.denyCause})${reasons ? `: ${reasons}` : ''}`
}
/** A guarded call was not allowed; `decision` is the deny, or null when an error denied it. */
class AmbitDenied extends Error {
  constructor(decision, error) {
    super(deniedMessage(decision, error))
    this.name = 'AmbitDenied'
    this.code = 'AMBIT_DENIED'
    this.decision = decision || null
    this.error = error || null
  }
}

// an option is a value, or a function of the call's arguments and its call options (the AI
// SDK's `{ toolCallId, messages, experimental_context }`, MCP's `extra`, ...)
const value = (spec, args, call) => (typeof spec === 'function' ? spec(args, call) : spec)

function check(authz, args, opts, call) {
  let decision
  try {
    decision = authz.authorize({
      principal: value(opts.principal, args, call),
      action: value(opts.action, args, call),
      resource: value(opts.resource, args, call),
      context: opts.context === undefined || opts.context === null ? authz.contextFor(value(opts.action, args, call), args) : value(opts.context, args, call),
      entities: value(opts.entities, args, call) ?? undefined,
      onBehalfOf: value(opts.onBehalfOf, args, call) ?? undefined,
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
    // decide on a snapshot of the arguments and hand the tool that same snapshot: a getter or
    // a later mutation cannot show the policy one value and the tool another
    // (the tool's arguments, the first parameter; call options after it pass through as they are)
    let snapshot
    try {
      snapshot = structuredClone(callArgs[0])
    } catch (error) {
      throw new AmbitDenied(null, coded('AMBIT_INVALID_REQUEST', `tool arguments cannot be snapshotted: ${error.message}`))
    }
    check(opts.authz, snapshot ?? {}, opts, callArgs[1])
    return await fn.apply(this, callArgs.length === 0 ? [] : [snapshot, ...callArgs.slice(1)])
  }
}

/**
 * Wraps a tool with an `execute(args, callOptions)` (a Vercel AI SDK `tool()`, an MCP-style
 * `{ name, execute }`): every `execute` is authorized on a snapshot of its arguments. The action
 * is `opts.action`, else the tool's `name`; AI SDK tools have no name, so give `action`, or
 * wrap the whole tool set with `guardTools`. The context is empty unless `opts.context` says.
 * Options may be functions of `(args, callOptions)`.
 */
function guardTool(tool, opts) {
  if (tool === null || typeof tool !== 'object' || typeof tool.execute !== 'function') {
    throw coded('AMBIT_INVALID_REQUEST', 'guardTool wraps a tool with an execute(args, options) function')
  }
  const action = opts.action ?? tool.name
  if (action === undefined || action === null) {
    throw coded('AMBIT_INVALID_REQUEST', 'guardTool: this tool has no name (AI SDK tools do not): pass opts.action, or use guardTools({ name: tool }, opts)')
  }
  return { ...tool, execute: guard(tool.execute.bind(tool), { ...opts, action }) }
}

/**
 * Wraps every tool of an AI SDK tool set (`{ toolName: tool({...}) }`): each key is that tool's
 * action unless `opts.action` says otherwise.
 */
function guardTools(tools, opts) {
  if (tools === null || typeof tools !== 'object') throw coded('AMBIT_INVALID_REQUEST', 'guardTools takes an object of tools')
  const out = {}
  for (const name of Object.keys(tools)) out[name] = guardTool(tools[name], { ...opts, action: opts.action ?? name })
  return out
}

/** Maps an MCP `tools/call` request (`{ params: { name, arguments } }`) to a decision. */
function authorizeToolCall(authz, request, opts) {
  const params = request !== null && typeof request === 'object' ? own(request, 'params') : undefined
  if (params === null || typeof params !== 'object' || typeof own(params, 'name') !== 'string') {
    throw coded('AMBIT_INVALID_REQUEST', 'a tools/call request is { params: { name: string, arguments?: object } }')
  }
  const given = own(params, 'arguments')
  if (given !== undefined && given !== null && (typeof given !== 'object' || Array.isArray(given))) {
    throw coded('AMBIT_INVALID_REQUEST', 'tools/call params.arguments must be an object')
  }
  const args = given ?? {}
  return authz.authorize({
    principal: value(opts.principal, args),
    action: opts.action ?? own(params, 'name'),
    resource: value(opts.resource, args),
    context: value(opts.context, args) ?? undefined,
    onBehalfOf: value(opts.onBehalfOf, args) ?? undefined,
  })
}

/** The method a request schema of the MCP SDK stands for (zod 3 or 4 literal). */
function schemaMethod(schema) {
  const m = schema && schema.shape && schema.shape.method
  if (!m) return undefined
  return m.value ?? (m._def && m._def.value) ?? (m._zod && m._zod.def && m._zod.def.values && m._zod.def.values[0])
}

/**
 * Guards an MCP SDK `McpServer` (call it right after `new McpServer(...)`, before registering
 * tools): every `tools/call` is authorized with the tool name as action (arguments as context
 * only when `opts.context` says); a deny is an `isError` result naming the cause and the
 * policies, and the tool never runs; `tools/list` offers only the tools the principal may call
 * (decided with empty arguments; `opts.filterList: false` turns that off). Options may be
 * functions of `(args, extra)`, so the principal can come from `extra.authInfo` or
 * `extra.sessionId`.
 */
const SESSION_AGENT_KEYS = ['ttlSeconds', 'task', 'scopes', 'resources', 'attributes']

function guardMcpServer(mcp, opts) {
  const low = mcp && mcp.server
  if (!low || typeof low.setRequestHandler !== 'function') {
    throw coded('AMBIT_INVALID_REQUEST', 'guardMcpServer takes an McpServer from @modelcontextprotocol/sdk')
  }
  if (mcp._toolHandlersInitialized) {
    throw coded('AMBIT_INVALID_REQUEST', 'guardMcpServer must be called before the first tool is registered')
  }
  const spec = opts.sessionAgent
  if (spec !== undefined && spec !== null) {
    const unknown = Object.keys(spec).filter((k) => !SESSION_AGENT_KEYS.includes(k))
    if (unknown.length > 0 || typeof spec.ttlSeconds !== 'number') {
      throw coded('AMBIT_INVALID_REQUEST', `sessionAgent takes ttlSeconds (required), task, scopes, resources, attributes${unknown.length ? `; unknown: ${unknown.join(', ')}` : ''}`)
    }
  }
  // one agent per (session, parent), minted on first use and revoked when the server's
  // connection closes
  const sessionAgents = new Map()
  const acting = (extra) => {
    if (spec === undefined || spec === null) return opts.principal
    const parent = String(value(opts.principal, {}, extra))
    const key = `${extra?.sessionId ?? ''}\u0000${parent}`
    if (!sessionAgents.has(key)) {
      const tools = mcp._registeredTools
      if (spec.scopes === undefined && (tools === null || typeof tools !== 'object')) {
        throw coded('AMBIT_INVALID_REQUEST', 'sessionAgent: this McpServer has no tool table; pass sessionAgent.scopes')
      }
      const agent = opts.authz.mintAgent({
        parent, task: spec.task ?? 'mcp-session', scopes: spec.scopes ?? Object.keys(tools), ttlSeconds: spec.ttlSeconds,
        resources: spec.resources, attributes: spec.attributes,
      })
      sessionAgents.set(key, agent.uid)
    }
    return sessionAgents.get(key)
  }
  if (spec !== undefined && spec !== null) {
    let userOnClose = low.onclose
    const revokeAll = () => {
      for (const uid of sessionAgents.values()) {
        try { opts.authz.revoke(uid) } catch { /* already closed: nothing left to cut off */ }
      }
      sessionAgents.clear()
    }
    Object.defineProperty(low, 'onclose', {
      configurable: true,
      get: () => () => { revokeAll(); userOnClose?.() },
      set: (fn) => { userOnClose = fn },
    })
  }
  const setRequestHandler = low.setRequestHandler.bind(low)
  const decide = (name, args, extra) => {
    try {
      return check(opts.authz, args, { ...opts, principal: acting(extra), action: opts.action ?? name }, extra)
    } catch (e) {
      if (e instanceof AmbitDenied) return e
      return new AmbitDenied(null, e) // a failed mint or option denies
    }
  }
  // tools/list hides a tool when the identity checks deny it whatever its arguments (precheck),
  // or when a call with no arguments can be decided and is denied; it shows a tool when only its
  // arguments can tell (each call is still decided)
  const offered = (name, extra) => {
    let principal, resource, onBehalfOf
    try {
      principal = acting(extra)
    } catch {
      return false // no session agent: no call
    }
    const action = opts.action ?? name
    try {
      principal = value(principal, {}, extra)
      resource = value(opts.resource, {}, extra)
      onBehalfOf = value(opts.onBehalfOf, {}, extra) ?? undefined
    } catch {
      return true
    }
    try {
      if (opts.authz.precheck({ principal, action: value(action, {}, extra), resource, onBehalfOf }) !== null) return false
    } catch {
      return false // the request itself is malformed: no call can succeed
    }
    const outcome = decide(name, {}, extra)
    return !(outcome instanceof AmbitDenied) || outcome.decision === null
  }
  low.setRequestHandler = (schema, handler) => {
    const method = schemaMethod(schema)
    if (method === 'tools/call') {
      return setRequestHandler(schema, async (request, extra) => {
        const params = request.params ?? {}
        const args = params.arguments ?? {}
        const outcome = decide(params.name, structuredClone(args), extra)
        if (outcome instanceof AmbitDenied) return { content: [{ type: 'text', text: outcome.message }], isError: true }
        return handler(request, extra)
      })
    }
    if (method === 'tools/list' && opts.filterList !== false) {
      return setRequestHandler(schema, async (request, extra) => {
        const listed = await handler(request, extra)
        const tools = (listed.tools ?? []).filter((t) => offered(t.name, extra))
        return { ...listed, tools }
      })
    }
    return setRequestHandler(schema, handler)
  }
  return mcp
}

module.exports = { ...native, Authorizer, Decision, AmbitDenied, guard, guardTool, guardTools, guardMcpServer, authorizeToolCall }
