// node-redis 6 with DEFAULT options (RESP 3, no fallback) against keyfence.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createClient, createCluster } from 'redis';
import { HOST, ports, uniq, backendCommand, eventually, sleep, T } from './common.mjs';

const clients = [];
async function client(opts = {}, port = ports.orders) {
  const c = createClient({ socket: { host: HOST, port, connectTimeout: 5000,
    reconnectStrategy: false }, ...opts });
  c.on('error', () => {});
  await c.connect();
  clients.push(c);
  return c;
}
after(() => { for (const c of clients) { try { c.destroy(); } catch { /* closed */ } } });

test('node-redis connects with RESP3 through the sidecar', T, async () => {
  const c = await client();
  assert.equal(await c.ping(), 'PONG');
  const k = uniq('nr:set');
  assert.equal(await c.set(k, 'v1'), 'OK');
  assert.equal(await c.get(k), 'v1');
  assert.equal(await backendCommand('GET', `shop@orders:${k}`), 'v1');
});

test('node-redis pipeline (execAsPipeline and auto-pipelining)', T, async () => {
  const c = await client();
  const k = uniq('nr:pipe');
  const m = c.multi();
  for (let i = 0; i < 50; i++) m.incr(k);
  const res = await m.execAsPipeline();
  assert.deepEqual(res, Array.from({ length: 50 }, (_, i) => i + 1));
  const many = await Promise.all(Array.from({ length: 200 }, (_, i) => c.set(`${k}:${i}`, String(i))));
  assert.ok(many.every((x) => x === 'OK'));
  const vals = await c.mGet(Array.from({ length: 200 }, (_, i) => `${k}:${i}`));
  assert.deepEqual(vals, Array.from({ length: 200 }, (_, i) => String(i)));
});

test('node-redis MULTI/EXEC', T, async () => {
  const c = await client();
  const k = uniq('nr:tx');
  const res = await c.multi().set(k, '1').incr(k).get(k).exec();
  assert.deepEqual(res, ['OK', 2, '2']);
  assert.equal(await backendCommand('GET', `shop@orders:${k}`), '2');
});

test('node-redis HGETALL returns an object', T, async () => {
  const c = await client();
  const k = uniq('nr:h');
  await c.hSet(k, { a: '1', b: '2' });
  const h = await c.hGetAll(k);
  assert.equal(Object.getPrototypeOf(h) === null || typeof h === 'object', true);
  assert.deepEqual({ ...h }, { a: '1', b: '2' });
});

test('node-redis pub/sub sees unprefixed channel names', T, async () => {
  const c = await client();
  const sub = c.duplicate();
  sub.on('error', () => {});
  await sub.connect();
  clients.push(sub);
  const ch = uniq('nr:news');
  const got = [];
  await sub.subscribe(ch, (message, channel) => got.push([channel, message]));
  await sub.pSubscribe('nr:news:*', (message, channel) => got.push(['p', channel, message]));
  assert.equal(await c.publish(ch, 'hello'), 2);
  await eventually(() => got.length >= 2, 3000, 'messages');
  assert.deepEqual(got.find((m) => m.length === 2), [ch, 'hello']);
  assert.deepEqual(got.find((m) => m.length === 3), ['p', ch, 'hello']);
  assert.deepEqual(await c.pubSubChannels('nr:news:*'), [ch]);
  assert.deepEqual(await backendCommand('PUBSUB', 'CHANNELS', '*nr:news*'), [`shop@orders:${ch}`]);
  await sub.unsubscribe(ch);
  await sub.pUnsubscribe();
});

test('node-redis through the gateway with username/password (HELLO 3 AUTH)', T, async () => {
  const g = await client({ username: 'orders', password: 'orders-secret' }, ports.gateway);
  const k = uniq('nr:gw');
  assert.equal(await g.set(k, 'gw'), 'OK');
  assert.equal(await backendCommand('GET', `shop@orders:${k}`), 'gw');
  const p = await client({ username: 'payments', password: 'payments-secret' }, ports.gateway);
  assert.equal(await p.get(k), null);
  assert.equal(await p.set(k, 'pay'), 'OK');
  assert.equal(await backendCommand('GET', `shop@payments:${k}`), 'pay');
});

test('node-redis gateway with a wrong password fails to connect', T, async () => {
  const bad = createClient({ socket: { host: HOST, port: ports.gateway, reconnectStrategy: false,
    connectTimeout: 3000 }, username: 'orders', password: 'nope' });
  bad.on('error', () => {});
  await assert.rejects(bad.connect(), /WRONGPASS|invalid username-password/);
  try { bad.destroy(); } catch { /* already closed */ }
});

test('node-redis createCluster works through the cluster emulation', T, async () => {
  const cl = createCluster({
    rootNodes: [{ socket: { host: HOST, port: ports.orders, connectTimeout: 5000 } }],
    defaults: { socket: { reconnectStrategy: false } },
  });
  cl.on('error', () => {});
  await cl.connect();
  try {
    const k = uniq('nr:cl');
    assert.equal(await cl.set(`${k}:a`, '1'), 'OK');
    assert.equal(await cl.get(`${k}:a`), '1');
    assert.equal(await backendCommand('GET', `shop@orders:${k}:a`), '1');
  } finally {
    cl.destroy();
  }
});

test('node-redis client-side caching (RESP3 CLIENT TRACKING) is namespaced', T, async () => {
  const c = await client({ RESP: 3, clientSideCache: { ttl: 0, maxEntries: 0 } });
  const w = await client();
  const theirs = await client({}, ports.payments);
  const k = uniq('nr:csc');
  assert.equal(await w.set(k, 'v1'), 'OK');
  assert.equal(await c.get(k), 'v1');  // a miss: read and cached
  assert.equal(await c.get(k), 'v1');  // served from the cache
  assert.equal(c.clientSideCache.stats().hitCount, 1);
  // another tenant writing the same client-side name invalidates nothing
  assert.equal(await theirs.set(k, 'theirs'), 'OK');
  await sleep(200);
  assert.equal(await c.get(k), 'v1');
  assert.equal(c.clientSideCache.stats().hitCount, 2);
  // the tenant's own write does, with the client-side name
  assert.equal(await w.set(k, 'v2'), 'OK');
  await eventually(async () => (await c.get(k)) === 'v2', 3000, 'the invalidated value re-read');
  assert.equal(await backendCommand('GET', `shop@orders:${k}`), 'v2');
});
