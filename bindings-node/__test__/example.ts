// Compile-checked against the package's types (`tsc --noEmit` in `npm test`).
import { Authorizer, Decision, guard, guardTool, AmbitDenied } from '../ambit'

const authz: Authorizer = Authorizer.fromDir('policies/helpdesk', { validation: 'strict', errorMode: 'fail_closed' })
const agent = authz.mintAgent({ parent: 'Helpdesk::Service::"helpdesk"', task: 't', scopes: ['issue_refund'], ttlSeconds: 900 })
const d: Decision = authz.authorize({ principal: agent.uid, action: 'issue_refund', resource: 'Helpdesk::Ticket::"4711"', context: { amount: 120 } })
const cause: 'forbidden' | 'no_permit' | 'out_of_scope' | string | null | undefined = d.denyCause
const allowed: boolean = d.allowed
const reasons: ReadonlyArray<string> = d.reasons
const stamp: number = d.toJSON().timestamp

const refund = guard((args: { amount: number }) => args.amount, {
  authz,
  action: 'issue_refund',
  principal: agent.uid,
  resource: 'Helpdesk::Ticket::"4711"',
  context: (a) => ({ amount: a.amount }),
})
const tool = guardTool({ name: 'issue_refund', execute: (a: { amount: number }) => a.amount }, {
  authz,
  principal: agent.uid,
  resource: 'Helpdesk::Ticket::"4711"',
})

async function main(): Promise<void> {
  const n: number = await refund({ amount: 1 })
  const m: number = await tool.execute({ amount: 2 })
  const outcome = await authz.reloadAsync()
  const g: number = outcome.generation
  try {
    await refund({ amount: 9000 })
  } catch (e) {
    if (e instanceof AmbitDenied) console.log(e.decision?.denyCause, n, m, g, cause, allowed, reasons, stamp)
  }
}
void main
