/** HostSlots (lib/fetch/host-slots.ts): bounded runs per host, in arrival order, freed early on request. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HostSlots } from '../../lib/fetch/host-slots.js';

/** A run that finishes when told, recording that it started. */
function gate() {
  let open!: () => void;
  const done = new Promise<void>((r) => { open = r; });
  return { done, open };
}

test('at most `limit` runs per key at once, waiters in arrival order, other keys unaffected', async () => {
  const slots = new HostSlots(2);
  const started: string[] = [];
  const gates = new Map<string, ReturnType<typeof gate>>();
  const run = (key: string, name: string) => {
    const g = gate();
    gates.set(name, g);
    return slots.run(key, async () => { started.push(name); await g.done; });
  };
  const all = [run('a', 'a1'), run('a', 'a2'), run('a', 'a3'), run('a', 'a4'), run('b', 'b1')];
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(started, ['a1', 'a2', 'b1']);
  assert.equal(slots.load('a'), 4);
  gates.get('a2')!.open();
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(started, ['a1', 'a2', 'b1', 'a3']);
  for (const g of gates.values()) g.open();
  await new Promise((r) => setImmediate(r));
  gates.get('a4')?.open();
  await Promise.all(all);
  assert.deepEqual(started, ['a1', 'a2', 'b1', 'a3', 'a4']);
  assert.equal(slots.load('a'), 0);
});

test('release() frees the slot before the run ends, once however often it is called', async () => {
  const slots = new HostSlots(1);
  const ga = gate();
  const gb = gate();
  const order: string[] = [];
  let release!: () => void;
  const a = slots.run('h', async (r) => {
    release = r;
    order.push('a start');
    await ga.done;
    order.push('a end');
  });
  const b = slots.run('h', async () => { order.push('b start'); await gb.done; });
  const c = slots.run('h', async () => { order.push('c start'); });
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(order, ['a start']);
  release();
  release();
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(order, ['a start', 'b start'], 'b runs while a still does; c still waits (one slot, released once)');
  gb.open();
  await Promise.all([b, c]);
  assert.deepEqual(order, ['a start', 'b start', 'c start']);
  ga.open();
  await a;
  assert.equal(slots.load('h'), 0, 'a\'s end frees nothing more');
});

test('a waiter whose signal aborts leaves the queue', async () => {
  const slots = new HostSlots(1);
  const g = gate();
  const a = slots.run('h', () => g.done);
  const ac = new AbortController();
  const b = slots.run('h', async () => 'ran', ac.signal);
  ac.abort(new Error('stop'));
  await assert.rejects(b, /stop/);
  assert.equal(slots.load('h'), 1);
  g.open();
  await a;
  assert.equal(slots.load('h'), 0);
});
