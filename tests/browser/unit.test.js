// Pure logic of the page, run in node (no browser, no server): backoff and message merging.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backoffDelay } from '../../web/conn.js';
import { RoomState, newClientId } from '../../web/store.js';

test('reconnect backoff grows exponentially, is jittered and capped at 10 s', () => {
  for (let attempt = 0; attempt < 40; attempt++) {
    const ceiling = Math.min(10_000, 500 * 2 ** attempt);
    for (let i = 0; i < 50; i++) {
      const d = backoffDelay(attempt);
      assert.ok(d >= ceiling / 2 && d <= ceiling, `attempt ${attempt}: ${d}`);
    }
  }
  const samples = new Set(Array.from({ length: 50 }, () => backoffDelay(6)));
  assert.ok(samples.size > 10, 'jitter spreads the delays');
});

test('merging by seq never duplicates and keeps order', () => {
  const room = new RoomState({ id: 1, name: 'r', visibility: 'public', last_seq: 3 });
  const m = (seq, body = `b${seq}`) => ({ room: 1, seq, kind: 'text', body, sender: { id: 1 }, client_id: `c${seq}`, ts: seq });
  room.merge([m(3), m(4)]);
  room.merge([m(1), m(2), m(3)]);
  room.merge([m(4), m(5)]);
  assert.deepEqual(room.seqs, [1, 2, 3, 4, 5]);
  assert.equal(room.lo, 1);
  assert.equal(room.hi, 5);
  assert.equal(room.last_seq, 5);
  assert.equal(room.merge([m(5)]), false, 'the same message again changes nothing');
  assert.equal(room.merge([m(5, 'edited')]), true, 'a changed message replaces the held one');
  assert.equal(room.bySeq.get(5).body, 'edited');
  assert.ok(room.hasClientId(1, 'c2'));
  assert.ok(!room.hasClientId(2, 'c2'));
});

test('client ids are printable ASCII, at most 64 characters, and unique', () => {
  const ids = new Set();
  for (let i = 0; i < 1000; i++) {
    const id = newClientId();
    assert.match(id, /^[\x21-\x7e]{1,64}$/);
    ids.add(id);
  }
  assert.equal(ids.size, 1000);
});

test('mentions are counted among the unread and cleared by reading', () => {
  const room = new RoomState({ id: 1, name: 'r', visibility: 'public', last_seq: 10 });
  room.resetUnread(8, 2, 1);
  assert.equal(room.unread, 2);
  assert.equal(room.mentions, 1);
  room.countUnread(11, 8, true);
  room.countUnread(12, 8, false);
  assert.equal(room.unread, 4);
  assert.equal(room.mentions, 2);
  room.readUpTo(11);
  assert.equal(room.unread, 1);
  assert.equal(room.mentions, 0);
  assert.equal(room.moderates, false);
  room.update({ role: 'admin' });
  assert.equal(room.moderates, true, 'admins moderate group rooms');
  const dm = new RoomState({ id: 2, name: 'dm-1-2', kind: 'direct', visibility: 'private', role: 'owner' });
  assert.equal(dm.moderates, false, 'nobody moderates a direct conversation');
});
