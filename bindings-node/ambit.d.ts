// Types of the npm package: the generated native API (index.d.ts) plus the glue in ambit.js.
import type { Agent, Authorizer, BatchError, Explanation, ManualClock, MintOptions, ReloadOutcome, Uid } from './index'

export * from './index'

/**
 * Options for `new Authorizer(...)` and `Authorizer.fromDir(...)`: the core's
 * `AuthorizerOptions` (the same names in every language, camelCase here; the same values,
 * snake_case everywhere), plus the sources. Absent (or `null`) keeps the core's default; an
 * unknown name, a wrong type or an out-of-range value is an `AMBIT_CONFIG` error.
 */
export interface AuthorizerOptions {
  /** Cedar schema text. */
  schema?: string | null
  /** Cedar policy text. */
  policies?: string | null
  /** Static entities: a JSON string or an array of entity objects. */
  entities?: string | Array<Record<string, unknown>> | null
  validation?: 'strict' | 'permissive' | 'off' | null
  errorMode?: 'fail_closed' | 'cedar' | null
  /** Most delegations in a chain (default 8). */
  maxDelegationDepth?: number | null
  /**
   * Let per-request entities join static entities or agents, or be principals: a trust
   * decision (default false).
   */
  trustRequestEntities?: boolean | null
  /** Whether static entities must fit the schema (default true). */
  validateEntities?: boolean | null
  /** The entity type of agents (default: the schema's one type named `Agent`). */
  agentType?: string | null
  /** Path of the hash-chained JSONL audit log. */
  auditFile?: string | null
  auditOverflow?: 'block' | 'drop' | null
  /** Queue length to the audit writer. */
  auditCapacity?: number | null
  /** Keep contexts in decision records (default: only their digest). */
  auditIncludeContext?: boolean | null
  /** Largest audit record kept whole, in bytes (default 1 MiB). */
  auditMaxRecordBytes?: number | null
  /** Issuers whose signed agent credentials are accepted: a JWKS `file` or inline `jwks`. */
  trustedIssuers?: Array<{ issuer: string; file?: string; jwks?: { keys: Array<Record<string, unknown>> } }> | null
  /** OAuth issuers whose access tokens `authorizeToken` accepts. */
  oauthIssuers?: Array<{
    issuer: string
    audience: string
    file?: string
    jwks?: { keys: Array<Record<string, unknown>> }
    algorithms?: Array<'ES256' | 'EdDSA'>
    clockSkewSeconds?: number
    principalType: string
    actorType: string
    contextClaims?: Array<string>
    /** Claims that become attributes of a subject the entity store does not know. */
    principalClaims?: Array<string>
    /** Members of each `act` claim that become attributes of that actor's entity, likewise. */
    actorClaims?: Array<string>
  }> | null
  /** Share the registry with a fleet through Redis (see docs/fleet.md). */
  fleet?: FleetOptions | null
  /** How DPoP proofs (RFC 9449) are judged. */
  dpop?: {
    /** Every token needs a proof (default false: only bound ones). */
    required?: boolean
    /** How old a proof's `iat` may be (default 60). */
    maxAgeSeconds?: number
    /** How far ahead a proof's `iat` may be (default 5). */
    clockSkewSeconds?: number
    /** The most proofs remembered against replay (default 100000); past it, refusal. */
    replayCapacity?: number
    algorithms?: Array<'ES256' | 'EdDSA'>
  } | null
}

/** What a reload attempt came to (`watch` callbacks, `reloadAsync`'s raw form): the core's report. */
export interface ReloadReport {
  readonly ok: boolean
  /** The version serving after a successful reload. */
  readonly version?: string
  readonly generation?: number
  /** The stable code of a failed reload (the last good policies keep serving). */
  readonly code?: string
  readonly message?: string
}

/** A node of `delegationTree(root)`: the identity, its agent record (absent for the root), children. */
export interface DelegationNode {
  readonly uid: string
  readonly revoked: boolean
  readonly agent?: {
    readonly uid: string
    readonly parent: string
    readonly owner: string
    readonly chain: ReadonlyArray<string>
    readonly task: string
    readonly scopes: ReadonlyArray<string>
    readonly resources?: ReadonlyArray<string>
    readonly depth: number
    readonly createdAt: number
    readonly expiresAt: number
    readonly revoked: boolean
  }
  readonly children: ReadonlyArray<DelegationNode>
}

/** A DPoP proof (the `DPoP` header's value) and the call it came with. */
export interface DpopProof {
  proof: string
  /** The HTTP method, exactly as `htm`. */
  method: string
  /** The call's URL; query and fragment are ignored. */
  url: string
  /** The nonce this server currently requires, when it uses nonces. */
  nonce?: string
}

/** The fleet options (camelCase here, snake_case in Rust and Python). */
export interface FleetOptions {
  /** `redis://host:port/db`. */
  redisUrl: string
  /** The stream's name (default `ambit`): processes sharing it share one registry. */
  stream?: string
  /** Without proof of being caught up this long, decisions deny `stale_state` (default 5000). */
  stalenessMs?: number
  /** `deny` (default): every decision denies while stale; `decide`: only those about agents. */
  staleStatic?: 'deny' | 'decide'
  /** Events between checkpoints (default 1000). */
  checkpointEvery?: number
  /** Connection timeout (default 2000). */
  connectTimeoutMs?: number
}

/** What a process knows of its fleet feed. */
export interface FleetStatus {
  readonly backend: string
  readonly applied: number
  readonly stale: boolean
  readonly heardMsAgo: number | null
  readonly stalenessMs: number
  readonly eventsApplied: number
  readonly resyncs: number
  readonly eventsRefused: number
  readonly halted: string | null
  readonly lastError: string | null
}

/** A request (the request wire format, camelCase). */
export interface AuthorizeRequest {
  /** Uid text (`Helpdesk::User::"alice"`) or a `Uid`. */
  principal: string | Uid
  /** A bare action name (`issue_refund`) or a full uid. */
  action: string
  resource: string | Uid
  /**
   * Converted faithfully or refused with `AMBIT_INVALID_REQUEST`: own enumerable data
   * properties of plain objects and arrays, strings, booleans, null, safe-integer or finite
   * numbers, and BigInts within 64 bits. Nothing is silently dropped.
   */
  context?: Record<string, unknown>
  entities?: Array<Record<string, unknown>>
  /** Explicit delegators, root first. */
  onBehalfOf?: Array<string | Uid>
}

// BEGIN generated by generate-types.js from ambit::DenyCause::ALL: do not edit
/** Why a decision denied, in check order: the core's stable deny causes. */
export type DenyCause =
  | 'invalid_token'
  | 'token_expired'
  | 'untrusted_issuer'
  | 'dpop_required'
  | 'dpop_invalid'
  | 'replayed'
  | 'stale_state'
  | 'unknown_principal'
  | 'invalid_chain'
  | 'depth_exceeded'
  | 'revoked'
  | 'expired'
  | 'out_of_scope'
  | 'out_of_confinement'
  | 'forbidden'
  | 'no_permit'
  | 'evaluation_error'
// END generated

/** @deprecated renamed `EvaluationError` (Python's `PolicyError` is a policy-text error). */
export type PolicyError = EvaluationError

/** A policy that erred while a hop was evaluated. */
export interface EvaluationError {
  readonly policyId: string
  readonly message: string
}

export interface Hop {
  readonly principal: string
  readonly allowed: boolean
  /** false when an earlier check or hop ended the decision before this one. */
  readonly evaluated: boolean
  readonly reasons: ReadonlyArray<string>
  readonly errors: ReadonlyArray<EvaluationError>
}

/** Every field of a decision, as `toJSON()` gives them (frozen). */
export interface DecisionFields {
  readonly allowed: boolean
  readonly decisionId: string
  readonly denyCause: DenyCause | null
  readonly denyHop: number | null
  readonly reasons: ReadonlyArray<string>
  readonly chain: ReadonlyArray<string>
  readonly hops: ReadonlyArray<Hop>
  readonly errors: ReadonlyArray<EvaluationError>
  readonly action: string
  readonly resource: string
  readonly policyVersion: string
  readonly generation: number
  readonly timestamp: number
}

/**
 * A decision: allowed, or denied with a stable `denyCause`. `allowed` is the core's boolean and
 * costs no parse; the other fields are parsed once, when first read, and frozen.
 */
export declare class Decision {
  private constructor()
  get allowed(): boolean
  get decisionId(): string
  /** Why it denied (`null` when allowed). */
  get denyCause(): DenyCause | null
  /** The hop (0 = root) whose check ended the decision. */
  get denyHop(): number | null
  get reasons(): ReadonlyArray<string>
  /** Root first, ending with the acting principal. */
  get chain(): ReadonlyArray<string>
  get hops(): ReadonlyArray<Hop>
  get errors(): ReadonlyArray<EvaluationError>
  get action(): string
  get resource(): string
  get policyVersion(): string
  get generation(): number
  /** Seconds since the epoch, from the authorizer's clock. */
  get timestamp(): number
  /** Every field as a plain object (what `JSON.stringify` uses). */
  toJSON(): DecisionFields
}

declare module './index' {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Authorizer {
    /** Every `*.cedarschema`, `*.cedar` and an optional `entities.json` in `path`. */
    function fromDir(
      path: string,
      options?: AuthorizerOptions | undefined | null,
      clock?: ManualClock | undefined | null,
      onAudit?: (record: Record<string, unknown>) => void | Promise<void>,
    ): Authorizer
  }
  interface Authorizer {
    /**
     * Decides one request; a deny is a decision, never a throw. A `Decision` is an object, so it
     * is always truthy: branch on `.allowed` (or use `check`), never on the decision itself.
     */
    authorize(request: AuthorizeRequest): Decision
    /** Whether the request is allowed: a deny and every error are `false` (fail closed). */
    check(request: AuthorizeRequest): boolean
    /**
     * Decides for the agent a signed credential carries, as if it had been minted here; a
     * credential that fails is a deny (`invalid_token`, `token_expired`, `untrusted_issuer`,
     * `depth_exceeded`, `revoked`, `dpop_required`, `dpop_invalid`, `replayed`), never a throw.
     * A credential bound to a holder key needs `dpop`, a proof by that key for this call.
     */
    authorizeCredential(request: { credential: string; action: string; resource: string | Uid; context?: Record<string, unknown>; dpop?: DpopProof }): Decision
    /**
     * Decides for an OAuth access token of a configured issuer (`oauthIssuers`); a token bound
     * to a key (`cnf.jkt`) needs `dpop`, a proof by that key for this call (RFC 9449).
     */
    authorizeToken(request: { token: string; action: string; resource: string | Uid; context?: Record<string, unknown>; dpop?: DpopProof }): Decision
    /** A narrower credential for a sub-agent of the agent a credential carries, signed with `key`. */
    attenuate(options: {
      credential: string
      key: import('./index').IssuerKey
      task: string
      scopes: Array<string>
      ttlSeconds: number
      resources?: Array<string>
      attributes?: Record<string, unknown>
    }): string
    /**
     * Decides many requests on one policy version; each result is a decision or an error
     * object `{ code, message }` (not thrown).
     */
    authorizeBatch(requests: Array<AuthorizeRequest>): Array<Decision | BatchError>
    /** Decides and explains, per hop; `decision` is the same `Decision` as `authorize` gives. */
    explain(request: AuthorizeRequest): Omit<Explanation, 'decision'> & { decision: Decision }
    /** `reload()` off the event loop; rejects with an Error whose `code` is the stable code. */
    reloadAsync(): Promise<ReloadOutcome>
    /** The last `n` audit records (after a flush), as plain objects. */
    auditRecent(n: number): Array<Record<string, unknown>>
    /** The members of a tool's arguments that the action's context type declares. */
    contextFor(action: string, args: Record<string, unknown>): Record<string, unknown>
    /** Mints a just-in-time agent; `attributes` are converted faithfully or refused. */
    mintAgent(options: Omit<MintOptions, 'parent'> & { parent: string | Uid; attributes?: Record<string, unknown> }): Agent
    /**
     * Follows the policy files and reloads on change; `callback(report)` gets each attempt's
     * report (a callback that throws is contained as a process warning).
     */
    watch(callback?: ((report: ReloadReport) => void) | null): void
    /** The identity checks of a decision without its policies (`null`: the policies decide). */
    precheck(request: { principal: string | Uid; action: string; resource: string | Uid; onBehalfOf?: Array<string | Uid> }): DenyCause | null
  }
}

/** A value, or a function of the call's arguments and its call options (the AI SDK's
 * `{ toolCallId, messages, experimental_context }`, ...). */
type Arg<T, A> = T | ((args: A, callOptions?: any) => T)

export interface GuardOptions<A = Record<string, unknown>> {
  authz: Authorizer
  action: Arg<string, A>
  resource: Arg<string, A>
  principal: Arg<string, A>
  context?: Arg<Record<string, unknown>, A>
  entities?: Arg<Array<Record<string, unknown>>, A>
  onBehalfOf?: Arg<Array<string>, A>
}

export declare class AmbitDenied extends Error {
  readonly code: 'AMBIT_DENIED'
  readonly decision: Decision | null
  readonly error: Error | null
}

export declare function guard<A, R>(
  fn: (args: A, ...rest: any[]) => R | Promise<R>,
  opts: GuardOptions<A>,
): (args: A, ...rest: any[]) => Promise<R>

/** Anything with an `execute(args, callOptions)`: an AI SDK `tool()`, an MCP-style tool. */
export interface Tool<A = any, R = any> {
  name?: string
  description?: string
  execute?: (args: A, callOptions?: any) => R | PromiseLike<R> | AsyncIterable<R>
}

export type GuardToolOptions<A> = Omit<GuardOptions<A>, 'action'> & { action?: GuardOptions<A>['action'] }

export declare function guardTool<T extends Tool>(tool: T, opts: GuardToolOptions<any>): T

export declare function guardTools<S extends Record<string, Tool>>(tools: S, opts: GuardToolOptions<any>): S

/** Guards an `McpServer` of `@modelcontextprotocol/sdk`; call before registering tools. */
export declare function guardMcpServer<S extends { server: unknown }>(
  server: S,
  opts: GuardToolOptions<any> & {
    filterList?: boolean
    /**
     * One agent per MCP session: `principal` then names the session's parent, and the agent
     * (scopes: the server's tool names unless given) is minted on the session's first request
     * and revoked when the server's connection closes.
     */
    sessionAgent?: { ttlSeconds: number; task?: string; scopes?: string[]; resources?: string[]; attributes?: Record<string, unknown> }
  },
): S

export declare function authorizeToolCall(
  authz: Authorizer,
  request: { params: { name: string; arguments?: Record<string, unknown> } },
  opts: Omit<GuardOptions, 'authz' | 'action'> & { action?: string },
): Decision

