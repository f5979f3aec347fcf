// A fleet member in its own Node process, driven by JSON lines on stdin (one answer per line
// on stdout): the other processes of the Python fleet test talk to it.
import { createInterface } from 'node:readline'
import { createRequire } from 'node:module'
const { Authorizer } = createRequire(import.meta.url)('..')

// the policy directory, and the authorizer's options as JSON (camelCase, `fleet` among them)
const [dir, options] = process.argv.slice(2)
const authz = Authorizer.fromDir(dir, JSON.parse(options))
const answer = (value) => process.stdout.write(JSON.stringify(value) + '\n')
answer({ ready: true })
for await (const line of createInterface({ input: process.stdin })) {
  const cmd = JSON.parse(line)
  try {
    if (cmd.op === 'authorize') {
      const d = authz.authorize(cmd.request)
      answer({ allowed: d.allowed, denyCause: d.denyCause })
    } else if (cmd.op === 'authorizeCredential') {
      const d = authz.authorizeCredential(cmd.request)
      answer({ allowed: d.allowed, denyCause: d.denyCause })
    } else if (cmd.op === 'mint') {
      answer(authz.mintAgent(cmd.spec))
    } else if (cmd.op === 'status') {
      answer(authz.fleetStatus())
    } else if (cmd.op === 'agents') {
      answer(authz.agents().map((a) => a.uid).sort())
    }
  } catch (e) {
    answer({ error: e.code ?? String(e), message: e.message })
  }
}
