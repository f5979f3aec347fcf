// A redis-server of the test's own: loopback, a free port, a temporary directory, every write
// fsynced. `make redis` installs the Debian package.
const { spawn, spawnSync } = require('node:child_process')
const fs = require('node:fs')
const net = require('node:net')
const os = require('node:os')
const path = require('node:path')

function freePort () {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.listen(0, '127.0.0.1', () => { const { port } = srv.address(); srv.close(() => resolve(port)) })
    srv.on('error', reject)
  })
}

function ping (port) {
  return new Promise((resolve) => {
    const c = net.connect(port, '127.0.0.1', () => c.write('PING\r\n'))
    c.on('data', (d) => { c.destroy(); resolve(d.toString().startsWith('+PONG')) })
    c.on('error', () => resolve(false))
  })
}

async function startRedis () {
  if (spawnSync('redis-server', ['--version']).error) {
    throw new Error('redis-server is not installed: `make redis` installs it (Debian package redis-server)')
  }
  const port = await freePort()
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ambit-redis-'))
  const server = {
    port,
    url: `redis://127.0.0.1:${port}/0`,
    proc: null,
    async start () {
      this.proc = spawn('redis-server', ['--bind', '127.0.0.1', '--port', String(port), '--dir', dir,
        '--save', '', '--appendonly', 'yes', '--appendfsync', 'always'], { stdio: 'ignore' })
      const deadline = Date.now() + 10000
      while (!(await ping(port))) {
        if (Date.now() > deadline) throw new Error(`redis-server did not answer on port ${port}`)
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
    },
    kill () {
      if (this.proc) { this.proc.kill('SIGKILL'); this.proc = null }
    },
    close () {
      this.kill()
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }
  await server.start()
  return server
}

async function eventually (withinMs, what, check) {
  const start = Date.now()
  while (!check()) {
    if (Date.now() - start > withinMs) throw new Error(`not within ${withinMs} ms: ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 2))
  }
  return Date.now() - start
}

module.exports = { startRedis, eventually }
