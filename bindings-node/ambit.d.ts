// Types of the npm package: the generated native API (index.d.ts) plus the glue in ambit.js.
import type { Authorizer, AuthorizeRequest, Decision, ReloadOutcome } from './index'

export * from './index'

declare module './index' {
  interface Authorizer {
    /** `reload()` off the event loop; rejects with an Error whose `code` is the stable code. */
    reloadAsync(): Promise<ReloadOutcome>
  }
}

type Arg<T, A> = T | ((args: A) => T)

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

export interface Tool<A = Record<string, unknown>, R = unknown> {
  name: string
  description?: string
  execute(args: A): R | Promise<R>
}

export declare function guardTool<A, R>(
  tool: Tool<A, R>,
  opts: Omit<GuardOptions<A>, 'action'> & { action?: GuardOptions<A>['action'] },
): Tool<A, R> & { execute(args: A): Promise<R> }

export declare function authorizeToolCall(
  authz: Authorizer,
  request: { params: { name: string; arguments?: Record<string, unknown> } },
  opts: Omit<GuardOptions, 'authz' | 'action'> & { action?: string },
): Decision

export type { AuthorizeRequest }
