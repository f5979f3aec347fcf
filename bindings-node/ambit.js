'use strict'
// The npm package `ambit`: the generated native binding (index.js) plus a little glue for
// agent runtimes. No policy logic lives here: every decision is the Rust core's.

const native = require('./index.js')

const { Authorizer } = native

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

module.exports = { ...native, AmbitDenied, guard, guardTool, authorizeToolCall }
