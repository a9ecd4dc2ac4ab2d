// 3. Messages sent while a page is offline appear once it reconnects, exactly once; messages it
//    wrote while offline are sent once, with the same client_id.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  launch, newPage, register, uniq, createRoom, joinPublicRoom, sendMessage, expectExactly,
  assertNoGapsNoDuplicates, waitConnected, screenshot,
} from './helpers.js';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

async function twoInRoom() {
  const a = await newPage(browser);
  const b = await newPage(browser);
  const room = uniq('ops');
  await register(a.page, uniq('erin'));
  await register(b.page, uniq('frank'));
  await createRoom(a.page, room);
  await joinPublicRoom(b.page, room);
  await sendMessage(a.page, 'before the outage');
  await expectExactly(b.page, 'before the outage');
  return { a, b, room };
}

test('offline page catches up exactly once and sends what it queued', async () => {
  const { a, b } = await twoInRoom();

  await b.context.setOffline(true);
  const banner = b.page.locator('#conn-banner');
  await banner.waitFor({ state: 'visible' });
  assert.match(await banner.textContent(), /Reconnecting/);

  // While b is offline: a writes, and b queues a message of its own.
  for (const t of ['missed one', 'missed two', 'missed three']) await sendMessage(a.page, t);
  await expectExactly(a.page, 'missed three');
  await sendMessage(b.page, 'queued while offline');
  await b.page.locator('#message-list li.msg-pending', { hasText: 'queued while offline' }).waitFor();
  await screenshot(b.page, 'desktop-light-offline');

  await b.context.setOffline(false);
  await banner.waitFor({ state: 'hidden' });
  for (const t of ['missed one', 'missed two', 'missed three']) await expectExactly(b.page, t);
  await expectExactly(b.page, 'queued while offline');
  await expectExactly(a.page, 'queued while offline');
  await expectExactly(b.page, 'before the outage');

  // Live traffic still flows afterwards.
  await sendMessage(a.page, 'after the outage');
  await expectExactly(b.page, 'after the outage');

  // The sender shows its own message at once and gets its seq a moment later: wait for that.
  const seqsB = await assertNoGapsNoDuplicates(b.page);
  await a.page.waitForFunction(
    (n) => [...document.querySelectorAll('#message-list li[data-seq]')].filter((li) => li.dataset.seq).length >= n,
    seqsB.length,
  );
  const seqsA = await assertNoGapsNoDuplicates(a.page);
  assert.deepEqual(seqsB, seqsA, 'both pages hold the same messages');
  assert.deepEqual(a.problems(), []);
  assert.deepEqual(b.problems(), []);
  await a.context.close();
  await b.context.close();
});

test('a socket closed by the server (4008) reconnects and fills the gap', async () => {
  const { a, b } = await twoInRoom();

  // Put the page's next connections behind a gate, then close its current socket with 4008.
  let gate;
  let gateOpen = new Promise((r) => { gate = r; });
  const sockets = [];
  let attempts = 0;
  await b.page.routeWebSocket(/\/ws$/, async (ws) => {
    attempts += 1;
    sockets.push(ws);
    await gateOpen;
    ws.connectToServer();
  });
  // The route only applies to new sockets: reload so that the page's socket goes through it.
  gate();
  await b.page.reload();
  await waitConnected(b.page);
  await expectExactly(b.page, 'before the outage');

  gateOpen = new Promise((r) => { gate = r; });
  const before = attempts;
  await sockets.at(-1).close({ code: 4008, reason: 'too slow' });
  const banner = b.page.locator('#conn-banner');
  await banner.waitFor({ state: 'visible' });
  assert.match(await banner.textContent(), /Reconnecting/);

  for (const t of ['gap one', 'gap two']) await sendMessage(a.page, t);
  await expectExactly(a.page, 'gap two');
  // b is trying to reconnect (held at the gate): let it through.
  await waitFor(() => attempts > before);
  gate();
  await banner.waitFor({ state: 'hidden' });
  await expectExactly(b.page, 'gap one');
  await expectExactly(b.page, 'gap two');
  await sendMessage(b.page, 'back again');
  await expectExactly(a.page, 'back again');
  // b shows its own message at once and gets its seq from the server a moment later: wait for that.
  const seqsA = await assertNoGapsNoDuplicates(a.page);
  await b.page.waitForFunction(
    (n) => [...document.querySelectorAll('#message-list li[data-seq]')].filter((li) => li.dataset.seq).length >= n,
    seqsA.length,
  );
  const seqsB = await assertNoGapsNoDuplicates(b.page);
  assert.deepEqual(seqsB, seqsA, 'both pages hold the same messages');
  assert.deepEqual(a.problems(), []);
  assert.deepEqual(b.problems(), []);
  await a.context.close();
  await b.context.close();
});

async function waitFor(cond, timeoutMs = 15_000) {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting for a condition');
    await new Promise((r) => setTimeout(r, 25)); // polling a condition
  }
}
