// ioredis 6 and node-redis 6, default options (RESP3), against keyfence over a
// 3-master Redis Cluster (run.sh --cluster): a job-queue worker pipelining
// GET/SET behind BLPOP, and a subscriber mixing SUBSCRIBE, SSUBSCRIBE to
// channels of many slots and (RESP3) regular commands on one connection.
// keyfence hides the cluster: no CROSSSLOT, no MOVED, no backend address.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import Redis from 'ioredis';
import { createClient } from 'redis';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { HOST, ports, uniq, sleep, T, clusterPorts, keySlot, nodeCommand, eventually }
  from './common.mjs';

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

// Last: it moves slots. redis-cli moves the source's lowest 1000 slots, one by one
// (IMPORTING/MIGRATING, MIGRATE, SETSLOT NODE), while every client keeps working on keys
// and shard channels of exactly those slots.
test('a 1000-slot reshard under BLPOP workers and subscribers: no error, no redirect',
  { timeout: 90000 }, async () => {
    assert.ok(clusterPorts.length >= 3, 'KF_CLUSTER_PORTS is not set: run.sh --cluster');
    const slots = await nodeCommand(clusterPorts[0], 'CLUSTER', 'SLOTS');
    const owner = (s) => slots.find(([a, b]) => a <= s && s <= b)[2][1];
    const src = owner(0);
    const dst = slots.map((r) => r[2][1]).find((p) => p !== src);
    const srcId = await nodeCommand(src, 'CLUSTER', 'MYID');
    const dstId = await nodeCommand(dst, 'CLUSTER', 'MYID');
    const P = 'shop@orders:';
    const moving = (s) => s < 1000;
    const pick = (tag, n, pred) => {
      const out = [];
      for (let i = 0; out.length < n && i < 200000; i++) {
        if (pred(keySlot(P + `${tag}${i}`))) out.push(`${tag}${i}`);
      }
      return out;
    };
    const tag = uniq('rs');
    const ks = pick(`${tag}:k`, 6, moving);
    const [q1, q2] = pick(`${tag}:q`, 2, moving);
    const chans = [...pick(`${tag}:ch`, 5, moving), ...pick(`${tag}:st`, 2, (s) => !moving(s))];
    const news = `${tag}:news`;

    const seen = [];  // every error or reply text a client got
    const bad = (v) => /MOVED|ASK|CROSSSLOT|TRYAGAIN|CLUSTERDOWN|127\.0\.0\.1:\d+/.test(String(v));
    const errors = [];
    const note = (who) => (e) => { errors.push(`${who}: ${e && e.message ? e.message : e}`); };

    const prod = io();
    for (const k of ks) assert.equal(await prod.set(k, 'v'), 'OK');
    const ioWorker = io();
    const nrWorker = await nr();
    const nrSub = await nr();
    const ioSub = io();
    const pub = await nr();
    const got = { nr: [], io: [] };
    await nrSub.subscribe(news, (m) => got.nr.push([news, m]));
    for (const ch of chans) await nrSub.sSubscribe(ch, (m, c) => got.nr.push([c, m]));
    ioSub.on('smessage', (c, m) => got.io.push([c, m]));
    for (const ch of chans) await ioSub.ssubscribe(ch);

    let done = false;
    const rounds = { io: 0, nr: 0, sub: 0, jobs: 0 };
    const ioLoop = (async () => {
      while (!done) {
        const p = ioWorker.pipeline();
        p.blpop(q1, 0.05);
        for (const k of ks) p.get(k);
        p.set(ks[0], 'v');
        const res = await p.exec().catch((e) => [[e]]);
        for (const [err, v] of res) {
          if (err) note('ioredis worker')(err);
          seen.push(v);
        }
        if (res[0] && Array.isArray(res[0][1])) rounds.jobs++;
        rounds.io++;
      }
    })();
    const nrLoop = (async () => {
      while (!done) {
        const res = await Promise.all([nrWorker.blPop(q2, 0.05), ...ks.map((k) => nrWorker.get(k)),
          nrWorker.set(ks[1], 'v')]).catch((e) => { note('node-redis worker')(e); return []; });
        seen.push(...res.map((r) => JSON.stringify(r)));
        if (res.slice(1, 1 + ks.length).some((v) => v !== 'v')) errors.push(`bad GET ${res}`);
        rounds.nr++;
      }
    })();
    const subLoop = (async () => {  // RESP3 commands on the subscribed connection
      while (!done) {
        const v = await nrSub.get(ks[2]).catch(note('node-redis subscriber'));
        if (v !== 'v') errors.push(`subscriber GET ${v}`);
        rounds.sub++;
        await sleep(5);
      }
    })();
    const prodLoop = (async () => {
      while (!done) {
        await prod.rpush(q1, 'job').catch(note('producer'));
        await prod.rpush(q2, 'job').catch(note('producer'));
        for (const ch of chans) await pub.sPublish(ch, 'during').catch(note('publisher'));
        await sleep(20);
      }
    })();

    await sleep(300);
    const r = await promisify(execFile)('redis-cli', ['--cluster', 'reshard', `${HOST}:${src}`,
      '--cluster-from', srcId, '--cluster-to', dstId, '--cluster-slots', '1000',
      '--cluster-yes'], { timeout: 60000, maxBuffer: 64 << 20 });
    assert.match(r.stdout, /Moving slot 999 /);
    await sleep(300);
    done = true;
    await Promise.all([ioLoop, nrLoop, subLoop, prodLoop]);

    const after = await nodeCommand(clusterPorts[0], 'CLUSTER', 'SLOTS');
    const ownerNow = (s) => after.find(([a, b]) => a <= s && s <= b)[2][1];
    assert.equal(ownerNow(keySlot(P + chans[0])), dst, 'the channels\' slots moved');
    // Every shard channel is served where it lives now, to both subscribers.
    for (const ch of chans) {
      await eventually(async () => (await pub.sPublish(ch, 'final ' + ch)) === 2, 5000,
        `both subscribers of ${ch} on its new node`);
    }
    await pub.publish(news, 'final news');
    await eventually(() => ['nr', 'io'].every((w) => chans.every((ch) =>
      got[w].some(([c, m]) => c === ch && m === 'final ' + ch))), 5000, 'final messages');
    await eventually(() => got.nr.some(([c, m]) => c === news && m === 'final news'), 5000, 'news');
    assert.deepEqual(errors, []);
    assert.deepEqual(seen.filter(bad), []);
    for (const w of ['nr', 'io']) assert.deepEqual(got[w].filter(([c, m]) => bad(c) || bad(m)), []);
    assert.ok(rounds.io > 5 && rounds.nr > 5 && rounds.sub > 5 && rounds.jobs > 0,
      JSON.stringify(rounds));
  });
