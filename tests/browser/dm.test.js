// Direct messages: started from the page, private to the two people in them.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  launch, newPage, register, uniq, createRoom, sendMessage, expectExactly, assertNoGapsNoDuplicates,
} from './helpers.js';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

const dmItem = (page, name) => page.locator('#dm-list .room-btn', { has: page.locator('.room-name', { hasText: new RegExp(`^${name}$`) }) });

async function startDm(page, username) {
  await page.getByRole('button', { name: 'Start a direct message' }).click();
  const dlg = page.getByRole('dialog', { name: 'Start a direct message' });
  await dlg.getByLabel('Username').fill(username);
  await dlg.getByRole('button', { name: 'Start' }).click();
  return dlg;
}

test('two users chat in a direct message started from the page; a third cannot see it', async () => {
  const a = await newPage(browser);
  const b = await newPage(browser);
  const c = await newPage(browser);
  const ann = uniq('ann');
  const bea = uniq('bea');
  const cyd = uniq('cyd');
  await register(a.page, ann);
  await register(b.page, bea);
  await register(c.page, cyd);
  await createRoom(c.page, uniq('elsewhere')); // c has a room of its own, and no conversation

  // Mistakes are explained in the dialog, which stays open.
  let dlg = await startDm(a.page, uniq('nobody'));
  await dlg.locator('.form-error').filter({ hasText: 'No user with that name.' }).waitFor();
  await dlg.getByLabel('Username').fill(ann);
  await dlg.getByRole('button', { name: 'Start' }).click();
  await dlg.locator('.form-error').filter({ hasText: /That is you/ }).waitFor();
  await a.page.keyboard.press('Escape');
  await dlg.waitFor({ state: 'hidden' });
  await a.page.waitForFunction(() => document.activeElement?.id === 'dm-btn', null);

  // Start it: it opens at once, named by the other person.
  dlg = await startDm(a.page, bea);
  await dlg.waitFor({ state: 'hidden' });
  await a.page.locator('#room-title').filter({ hasText: new RegExp(`^${bea}$`) }).waitFor();
  assert.match(await a.page.locator('#room-meta').textContent(), /Direct message/);
  await dmItem(a.page, bea).waitFor();
  assert.equal(await dmItem(a.page, bea).getAttribute('aria-current'), 'page');
  assert.equal(await a.page.getByRole('button', { name: 'Leave room' }).isVisible(), false);
  assert.equal(await a.page.getByRole('button', { name: 'Invite someone' }).isVisible(), false);

  await sendMessage(a.page, 'just between us');
  await expectExactly(a.page, 'just between us');
  await sendMessage(a.page, `@${bea} are you there?`);
  await expectExactly(a.page, `@${bea} are you there?`);

  // The other side: the conversation appears live, named by its peer, unread with a mention.
  const item = dmItem(b.page, ann);
  await item.waitFor();
  await item.locator('.badge').filter({ hasText: /^2$/ }).waitFor();
  await item.locator('.mention-badge').filter({ hasText: /^@1$/ }).waitFor();
  assert.match(await item.getAttribute('aria-label'), /2 unread, 1 mention of you/);
  await item.click();
  await b.page.locator('#room-title').filter({ hasText: new RegExp(`^${ann}$`) }).waitFor();
  await expectExactly(b.page, 'just between us');
  await expectExactly(b.page, `@${bea} are you there?`);
  const mention = b.page.locator('#message-list li.msg-mention', { hasText: 'are you there?' });
  await mention.waitFor();
  assert.equal(await mention.locator('.mention-me').textContent(), `@${bea}`);
  await item.locator('.mention-badge').waitFor({ state: 'hidden' });
  await sendMessage(b.page, 'yes, here');
  await expectExactly(a.page, 'yes, here');
  await expectExactly(b.page, 'yes, here');

  // Starting it again from the other side opens the same conversation.
  dlg = await startDm(b.page, ann);
  await dlg.waitFor({ state: 'hidden' });
  assert.equal(await b.page.locator('#dm-list .room-btn').count(), 1);
  await expectExactly(b.page, 'just between us');

  // The third user sees nothing of it: not in the list, not by id, not among public rooms.
  const id = Number(await dmItem(a.page, bea).getAttribute('data-room-id'));
  assert.ok(id > 0);
  assert.equal(await c.page.locator('#dm-list .room-btn').count(), 0);
  await c.page.locator('#dm-list-empty').waitFor();
  const res = await c.context.request.get(`/api/v1/rooms/${id}/messages`);
  assert.equal(res.status(), 404);
  const pub = await (await c.context.request.get('/api/v1/rooms')).json();
  assert.ok(!pub.rooms.some((r) => r.id === id));
  assert.equal(await c.page.locator('#message-list .msg-body', { hasText: 'just between us' }).count(), 0);

  await assertNoGapsNoDuplicates(a.page);
  await assertNoGapsNoDuplicates(b.page);
  for (const p of [a, b, c]) assert.deepEqual(p.problems(), []);
  for (const p of [a, b, c]) await p.context.close();
});
