// Shared settings for the real-client tests. run.sh (through the Python harness) starts
// redis-server and keyfence and passes their ports in the environment.
import assert from 'node:assert/strict';
import net from 'node:net';

function need(name) {
  const v = process.env[name];
  assert.ok(v, `${name} is not set: run the client tests through tests/clients/run.sh`);
  return Number(v);
}

export const HOST = process.env.KF_HOST || '127.0.0.1';
// Cluster mode (run.sh --cluster): every node's port.
export const clusterPorts = (process.env.KF_CLUSTER_PORTS || '').split(',').filter(Boolean)
  .map(Number);

// Redis Cluster's key slot (CRC16-XMODEM of the key or its {hash tag}, mod 16384).
export function keySlot(key) {
  let k = Buffer.from(key);
  const open = k.indexOf('{');
  if (open >= 0) {
    const close = k.indexOf('}', open + 1);
    if (close > open + 1) k = k.subarray(open + 1, close);
  }
  let crc = 0;
  for (const b of k) {
    crc ^= b << 8;
    for (let i = 0; i < 8; i++) crc = (crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1) & 0xffff;
  }
  return crc % 16384;
}

export const ports = {
  gateway: need('KF_GATEWAY_PORT'),
  orders: need('KF_ORDERS_PORT'),
  payments: need('KF_PAYMENTS_PORT'),
  backend: need('KF_BACKEND_PORT'),
};

// A unique key prefix per test run so tests do not depend on each other's data.
export function uniq(tag) {
  return `${tag}:${process.pid}:${Math.random().toString(36).slice(2, 8)}`;
}

// Per-test options: bounded, so a proxy that never answers fails the test, not the run.
export const T = { timeout: 15000 };

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Minimal RESP2 client to read the BACKEND directly (to check the namespace prefix).
export async function backendCommand(...args) {
  return nodeCommand(ports.backend, ...args);
}

// The same, to any redis-server on loopback (a cluster node).
export async function nodeCommand(port, ...args) {
  const sock = net.createConnection({ host: HOST, port });
  sock.setTimeout(5000);
  const req = `*${args.length}\r\n` + args.map((a) => {
    const b = Buffer.from(String(a));
    return `$${b.length}\r\n${b.toString('latin1')}\r\n`;
  }).join('');
  return await new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    sock.on('timeout', () => { sock.destroy(); reject(new Error('backend timeout')); });
    sock.on('error', reject);
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      const r = parse(buf, 0);
      if (r) { sock.end(); resolve(r.value); }
    });
    sock.write(req, 'latin1');
  });
}

function parse(buf, pos) {
  const eol = buf.indexOf('\r\n', pos);
  if (eol < 0) return null;
  const t = String.fromCharCode(buf[pos]);
  const line = buf.toString('utf8', pos + 1, eol);
  const next = eol + 2;
  if (t === '+') return { value: line, pos: next };
  if (t === '-') return { value: new Error(line), pos: next };
  if (t === ':') return { value: Number(line), pos: next };
  if (t === '$') {
    const n = Number(line);
    if (n < 0) return { value: null, pos: next };
    if (buf.length < next + n + 2) return null;
    return { value: buf.toString('utf8', next, next + n), pos: next + n + 2 };
  }
  if (t === '*') {
    const n = Number(line);
    if (n < 0) return { value: null, pos: next };
    const out = [];
    let p = next;
    for (let i = 0; i < n; i++) {
      const r = parse(buf, p);
      if (!r) return null;
      out.push(r.value);
      p = r.pos;
    }
    return { value: out, pos: p };
  }
  throw new Error(`unexpected RESP type ${t}`);
}

// Wait until fn() is truthy (bounded).
export async function eventually(fn, ms = 3000, what = 'condition') {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}
