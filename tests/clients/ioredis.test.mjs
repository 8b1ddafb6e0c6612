// ioredis 6 with DEFAULT options (protocol 3: HELLO 3 on connect) against keyfence.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import Redis from 'ioredis';
import { HOST, ports, uniq, backendCommand, eventually, T } from './common.mjs';

const clients = [];
function client(opts = {}) {
  const c = new Redis({ host: HOST, port: ports.orders, connectTimeout: 5000,
    commandTimeout: 5000, maxRetriesPerRequest: 1, ...opts });
  c.on('error', () => {});
  clients.push(c);
  return c;
}
after(() => { for (const c of clients) c.disconnect(); });

test('ioredis defaults to RESP3 and connects through the sidecar', T, async () => {
  const r = client();
  assert.equal(r.options.protocol, 3);
  assert.equal(await r.ping(), 'PONG');
  const k = uniq('io:set');
  assert.equal(await r.set(k, 'v1'), 'OK');
  assert.equal(await r.get(k), 'v1');
  assert.equal(await backendCommand('GET', `shop@orders:${k}`), 'v1');
  assert.equal(await backendCommand('EXISTS', k), 0);
});

test('ioredis pipeline', T, async () => {
  const r = client();
  const k = uniq('io:pipe');
  const p = r.pipeline();
  for (let i = 0; i < 100; i++) p.incr(k);
  p.get(k);
  const res = await p.exec();
  assert.equal(res.length, 101);
  res.slice(0, 100).forEach(([err, v], i) => { assert.equal(err, null); assert.equal(v, i + 1); });
  assert.deepEqual(res[100], [null, '100']);
});

test('ioredis MULTI/EXEC', T, async () => {
  const r = client();
  const k = uniq('io:tx');
  const res = await r.multi().set(k, '1').incr(k).get(k).exec();
  assert.deepEqual(res, [[null, 'OK'], [null, 2], [null, '2']]);
  assert.equal(await backendCommand('GET', `shop@orders:${k}`), '2');
});

test('ioredis HGETALL returns an object', T, async () => {
  const r = client();
  const k = uniq('io:h');
  await r.hset(k, { a: '1', b: '2' });
  assert.deepEqual(await r.hgetall(k), { a: '1', b: '2' });
});

test('ioredis pub/sub sees unprefixed channel names', T, async () => {
  const sub = client();
  const pub = client();
  const ch = uniq('io:news');
  const got = [];
  sub.on('message', (channel, message) => got.push([channel, message]));
  sub.on('pmessage', (pattern, channel, message) => got.push([pattern, channel, message]));
  assert.equal(await sub.subscribe(ch), 1);
  await sub.psubscribe('io:news:*');
  const n = await pub.publish(ch, 'hello');
  assert.equal(n, 2);
  await eventually(() => got.length >= 2, 3000, 'messages');
  assert.deepEqual(got.find((m) => m.length === 2), [ch, 'hello']);
  assert.deepEqual(got.find((m) => m.length === 3), ['io:news:*', ch, 'hello']);
  const chans = await backendCommand('PUBSUB', 'CHANNELS', '*io:news*');
  assert.deepEqual(chans, [`shop@orders:${ch}`]);
  assert.deepEqual(await pub.pubsub('CHANNELS', 'io:news:*'), [ch]);
  await sub.unsubscribe(ch);
  await sub.punsubscribe();
});

test('ioredis keyspace notifications: the tenant\'s own keys, client-side names', T, async () => {
  await backendCommand('CONFIG', 'SET', 'notify-keyspace-events', 'KA');
  const sub = client();
  const w = client();
  const theirs = client({ port: ports.payments });
  const k = uniq('io:ks');
  const got = [];
  sub.on('pmessage', (pattern, channel, message) => got.push([pattern, channel, message]));
  await sub.psubscribe(`__keyspace@0__:${k}*`);
  await theirs.set(k, 'not yours');  // payments' key of the same name: no event for orders
  await w.set(k, 'v');
  await w.del(k);
  await eventually(() => got.length >= 2, 3000, 'keyspace events');
  assert.deepEqual(got, [[`__keyspace@0__:${k}*`, `__keyspace@0__:${k}`, 'set'],
    [`__keyspace@0__:${k}*`, `__keyspace@0__:${k}`, 'del']]);
  await sub.punsubscribe();
});

test('ioredis through the gateway with username/password', T, async () => {
  const g = client({ port: ports.gateway, username: 'billing', password: 'billing-secret' });
  const k = uniq('io:gw');
  assert.equal(await g.set(k, 'gw'), 'OK');
  assert.equal(await backendCommand('GET', `shop@orders:${k}`), 'gw');
  const p = client({ port: ports.gateway, username: 'payments', password: 'payments-secret' });
  assert.equal(await p.get(k), null);
});

test('ioredis gateway with a wrong password fails', T, async () => {
  const bad = new Redis({ host: HOST, port: ports.gateway, username: 'orders', password: 'nope',
    lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
  const errors = [];
  bad.on('error', (e) => errors.push(String(e)));
  let rejection = null;
  await bad.connect().catch((e) => { rejection = String(e); });
  assert.ok(rejection, 'connect() with a wrong password succeeded');
  const all = [rejection, ...errors].join(' | ');
  assert.match(all, /WRONGPASS|invalid username-password/);
  bad.disconnect();
});

test('ioredis Cluster client works through the cluster emulation', T, async () => {
  const cl = new Redis.Cluster([{ host: HOST, port: ports.orders }], {
    redisOptions: { connectTimeout: 5000, commandTimeout: 5000 },
    clusterRetryStrategy: () => null,
  });
  cl.on('error', () => {});
  try {
    const k = uniq('io:cl');
    assert.equal(await cl.set(`${k}:a`, '1'), 'OK');
    assert.equal(await cl.get(`${k}:a`), '1');
    assert.deepEqual(await cl.mget(`{${k}}:x`, `{${k}}:y`), [null, null]);
    assert.equal(await backendCommand('GET', `shop@orders:${k}:a`), '1');
  } finally {
    cl.disconnect();
  }
});
