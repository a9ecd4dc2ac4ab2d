// 2. Reloading keeps the session and the history; older history loads when scrolled to the top.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  launch, newPage, register, uniq, createRoom, sendMessage, expectExactly, assertNoGapsNoDuplicates, waitConnected,
} from './helpers.js';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

test('reload keeps the session, the open room and its history', async () => {
  const a = await newPage(browser);
  const user = uniq('carol');
  const room = uniq('notes');
  await register(a.page, user);
  await createRoom(a.page, room);
  for (const t of ['first', 'second', 'third']) await sendMessage(a.page, t);
  await expectExactly(a.page, 'third');

  // The token lives only in the HttpOnly cookie: nothing readable by scripts.
  const stored = await a.page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }) + document.cookie);
  assert.doesNotMatch(stored, /eyJ/, 'no token in web storage or readable cookies');
  const cookies = await a.context.cookies();
  const tok = cookies.find((c) => c.name === 'parley_token');
  assert.ok(tok, 'the session cookie is set');
  assert.equal(tok.httpOnly, true);

  await a.page.reload();
  await a.page.locator('#app-screen').waitFor({ state: 'visible' });
  await waitConnected(a.page);
  assert.equal(await a.page.locator('#auth-screen').isVisible(), false);
  await a.page.locator('#room-title').filter({ hasText: room }).waitFor();
  for (const t of ['first', 'second', 'third']) await expectExactly(a.page, t);
  await assertNoGapsNoDuplicates(a.page);
  assert.deepEqual(a.problems(), []);
  await a.context.close();
});

test('older history loads when scrolled to the top, without gaps or duplicates', async () => {
  const a = await newPage(browser, { viewport: { width: 1280, height: 800 } });
  const user = uniq('dave');
  const room = uniq('long');
  await register(a.page, user);
  await createRoom(a.page, room);
  // 130 messages through REST (the context shares the page's cookie): more than two pages.
  for (let i = 1; i <= 130; i++) {
    const res = await a.context.request.post(`/api/v1/rooms/${room}/messages`, { data: { body: `m${i}`, client_id: `seed-${i}` } });
    assert.equal(res.status(), 201, await res.text());
  }
  await a.page.reload();
  await waitConnected(a.page);
  await expectExactly(a.page, 'm130');
  assert.equal(await a.page.locator('#message-list .msg-body').filter({ hasText: /^m1$/ }).count(), 0);

  // Scroll to the top until the very first message is there.
  await a.page.waitForFunction(() => {
    const box = document.getElementById('messages');
    box.scrollTop = 0;
    box.dispatchEvent(new Event('scroll'));
    return [...document.querySelectorAll('#message-list .msg-body')].some((b) => b.textContent === 'm1')
      && !document.getElementById('history-start').hidden;
  }, null, { polling: 250 });
  for (const t of ['m1', 'm50', 'm51', 'm80', 'm81', 'm130']) await expectExactly(a.page, t);
  const seqs = await assertNoGapsNoDuplicates(a.page);
  assert.equal(seqs[0], 1, 'starts at the create system message');
  assert.equal(seqs.length, 131);
  assert.deepEqual(a.problems(), []);
  await a.context.close();
});
