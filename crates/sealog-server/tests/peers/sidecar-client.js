// A sidecar client written like the Mojaloop forensic-logging-sidecar's
// examples/client.js: Net.createConnection, then each message written as a
// 4-byte big-endian length and the bytes. It sends N JSON messages over one
// connection, reads sealog's ack frames, and prints a JSON summary once the
// acks cover every message (or after a timeout).
'use strict'
const Net = require('net')
const { EventEmitter } = require('events')

class Client extends EventEmitter {
  constructor () {
    super()
    this._prefixSize = 4
  }

  connect (port) {
    this._client = Net.createConnection({ port, host: '127.0.0.1' }, () => {
      this.emit('open')
    })
    this._client.on('data', data => this.emit('data', data))
    this._client.on('end', () => this.emit('end'))
    this._client.on('error', e => this.emit('error', e))
  }

  write (msg) {
    const message = Buffer.isBuffer(msg) ? msg : Buffer.from(msg)
    const length = message.length
    const buffer = Buffer.alloc(this._prefixSize + length)
    buffer.writeUInt32BE(length, 0)
    message.copy(buffer, this._prefixSize)
    return this._client.write(buffer)
  }

  end () { this._client.end() }
}

const port = Number(process.argv[2])
const total = Number(process.argv[3])
const client = new Client()
let acked = 0
let receipts = 0
let errors = 0
let pending = Buffer.alloc(0)
const done = (why) => {
  process.stdout.write(JSON.stringify({ why, sent: total, acked, receipts, errors }) + '\n')
  process.exit(0)
}
setTimeout(() => done('timeout'), 60000)
client.on('data', data => {
  pending = Buffer.concat([pending, data])
  while (pending.length >= 4) {
    const len = pending.readUInt32BE(0)
    if (pending.length < 4 + len) break
    const frame = JSON.parse(pending.subarray(4, 4 + len).toString('utf8'))
    pending = pending.subarray(4 + len)
    if (frame.type === 'receipt') { receipts++; acked += frame.count } else { errors++ }
  }
  if (acked >= total) { client.end(); done('acked') }
})
client.on('error', e => done('error: ' + e.message))
client.on('open', () => {
  let i = 0
  const pump = () => {
    while (i < total) {
      const ok = client.write(JSON.stringify({ app: 'central-ledger', n: i, msg: 'transfer ' + i + ' prepared' }))
      i++
      if (!ok) { client._client.once('drain', pump); return }
    }
  }
  pump()
})
client.connect(port)
