// ioredis 6 and node-redis 6, default options (RESP3), against keyfence over a
// 3-master Redis Cluster (run.sh --cluster): a job-queue worker pipelining
// GET/SET behind BLPOP, and a subscriber mixing SUBSCRIBE, SSUBSCRIBE to
// channels of many slots and (RESP3) regular commands on one connection.
// keyfence hides the cluster: no CROSSSLOT, no MOVED, no backend address.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import Redis from 'ioredis';
import { createClient } from 'redis';
import { HOST, ports, uniq, sleep, T } from './common.mjs';

const closers = [];
after(async () => { for (const c of closers) { try { await c(); } catch {} } });

function io() {
  const c = new Redis({ host: HOST, port: ports.orders, connectTimeout: 5000,
    commandTimeout: 8000, maxRetriesPerRequest: 1 });
  c.on('error', () => {});
  closers.push(async () => c.disconnect());
  return c;
}
async function nr() {
  const c = createClient({ socket: { host: HOST, port: ports.orders, connectTimeout: 5000 } });
  c.on('error', () => {});
  await c.connect();
  closers.push(async () => c.disconnect());
  return c;
}

const keys = (tag, n) => Array.from({ length: n }, (_, i) => `${uniq(tag)}:${i}`);

test('ioredis: GET/SET pipelined behind BLPOP run after it, on their own slots', T, async () => {
  const worker = io();
  const producer = io();
  const q = uniq('jobs');
  const ks = keys('io:k', 8);  // spread over the masters
  for (const k of ks) assert.equal(await producer.set(k, 'v-' + k), 'OK');
  const p = worker.pipeline();
  p.blpop(q, 2);
  for (const k of ks) p.get(k);
  p.set(ks[0], 'after');
  const pending = p.exec();
  await sleep(200);
  assert.equal(await producer.rpush(q, 'job-1'), 1);
  const res = await pending;
  for (const [err] of res) assert.equal(err, null);
  assert.deepEqual(res[0][1], [q, 'job-1']);
  ks.forEach((k, i) => assert.equal(res[i + 1][1], 'v-' + k));
  assert.equal(res[ks.length + 1][1], 'OK');
  // Auto-pipelining of independent calls on one connection, BLPOP timing out.
  const [b, g] = await Promise.all([worker.blpop(q, 0.3), worker.get(ks[1])]);
  assert.equal(b, null);
  assert.equal(g, 'v-' + ks[1]);
});

test('node-redis: commands behind blPop on one connection', T, async () => {
  const c = await nr();
  const prod = await nr();
  const q = uniq('nrjobs');
  const ks = keys('nr:k', 6);
  const [popped, ...rest] = await Promise.all([
    c.blPop(q, 2), ...ks.map((k) => c.set(k, 'x')), ...ks.map((k) => c.get(k)),
    sleep(150).then(() => prod.rPush(q, 'j')).then(() => 'pushed')]);
  assert.deepEqual(popped, { key: q, element: 'j' });
  assert.deepEqual(rest.slice(0, ks.length), ks.map(() => 'OK'));
  assert.deepEqual(rest.slice(ks.length, 2 * ks.length), ks.map(() => 'x'));
});

test('node-redis: subscribe + sSubscribe to channels of many slots + RESP3 GET', T, async () => {
  const sub = await nr();
  const pub = await nr();
  const got = [];
  const chans = Array.from({ length: 6 }, (_, i) => uniq(`sch${i}`));
  await sub.subscribe('news-' + process.pid, (m, ch) => got.push([ch, m]));
  for (const ch of chans) await sub.sSubscribe(ch, (m, c) => got.push([c, m]));
  // RESP3: regular commands on the subscribed connection, any slot.
  for (const k of keys('nr:sub', 6)) {
    assert.equal(await sub.set(k, 'v'), 'OK');
    assert.equal(await sub.get(k), 'v');
  }
  for (const ch of chans) assert.equal(await pub.sPublish(ch, 'hello ' + ch), 1);
  assert.equal(await pub.publish('news-' + process.pid, 'all'), 1);
  for (let i = 0; i < 100 && got.length < chans.length + 1; i++) await sleep(20);
  assert.deepEqual(got.map(([c]) => c).sort(), [...chans, 'news-' + process.pid].sort());
  for (const [c, m] of got) assert.ok(m === 'all' || m === 'hello ' + c, m);
  for (const ch of chans) await sub.sUnsubscribe(ch);
  assert.equal(await pub.sPublish(chans[0], 'late'), 0);
});

test('ioredis: subscriber on shard channels of many slots', T, async () => {
  const sub = io();
  const pub = io();
  const chans = Array.from({ length: 6 }, (_, i) => uniq(`iosch${i}`));
  const got = [];
  sub.on('smessage', (ch, m) => got.push([ch, m]));
  for (const ch of chans) await sub.ssubscribe(ch);
  for (const ch of chans) assert.equal(await pub.spublish(ch, 'm ' + ch), 1);
  for (let i = 0; i < 100 && got.length < chans.length; i++) await sleep(20);
  assert.deepEqual(got.map(([c]) => c).sort(), [...chans].sort());
});
