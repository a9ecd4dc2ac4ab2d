// Editing and deleting messages: in place, live on the other page, kept after a reload.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  launch, newPage, register, uniq, createRoom, joinPublicRoom, sendMessage, expectExactly, waitConnected,
  assertNoGapsNoDuplicates,
} from './helpers.js';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

const item = (page, text) => page.locator('#message-list li.msg-text', { has: page.locator('.msg-body', { hasText: new RegExp(`^${text}$`) }) });
const bySeq = (page, seq) => page.locator(`#message-list li.msg-text[data-seq="${seq}"]`);

test('edit and delete one\'s own message; the other page follows live; reload keeps the tombstone', async () => {
  const a = await newPage(browser);
  const b = await newPage(browser);
  const owner = uniq('olga');
  const writer = uniq('walt');
  const room = uniq('edits');
  await register(a.page, owner);
  await register(b.page, writer);
  await createRoom(a.page, room);
  await joinPublicRoom(b.page, room);

  await sendMessage(b.page, 'teh first draft');
  await expectExactly(b.page, 'teh first draft');
  await expectExactly(a.page, 'teh first draft');
  const seq = await item(b.page, 'teh first draft').getAttribute('data-seq');

  // Hover shows labelled buttons; Edit opens an editor in place.
  const mine = bySeq(b.page, seq);
  await mine.hover();
  await mine.getByRole('button', { name: 'Edit message' }).click();
  const editor = mine.getByRole('textbox', { name: 'Edit message' });
  await b.page.waitForFunction(() => document.activeElement?.classList.contains('msg-edit-input'));
  // Escape cancels: nothing changes, focus goes back to the Edit button.
  await editor.fill('thrown away');
  await editor.press('Escape');
  await editor.waitFor({ state: 'detached' });
  await expectExactly(b.page, 'teh first draft');
  assert.equal(await b.page.evaluate(() => document.activeElement?.getAttribute('aria-label')), 'Edit message');

  // Keyboard again (Enter on the focused Edit button), then Enter saves.
  await b.page.keyboard.press('Enter');
  await editor.fill('the first draft');
  await editor.press('Enter');
  await expectExactly(b.page, 'the first draft');
  await expectExactly(a.page, 'the first draft');
  await bySeq(a.page, seq).locator('.msg-edited').filter({ hasText: '(edited)' }).waitFor();
  await bySeq(b.page, seq).locator('.msg-edited').waitFor();

  // Others' messages: no Edit; a plain member gets no Delete either.
  await sendMessage(a.page, 'from the owner');
  await expectExactly(b.page, 'from the owner');
  const owners = item(b.page, 'from the owner');
  assert.equal(await owners.getByRole('button', { name: 'Edit message' }).count(), 0);
  assert.equal(await owners.getByRole('button', { name: 'Delete message' }).count(), 0);

  // Delete, from the keyboard: one Tab stop per message (a toolbar), → reaches Delete, the dialog confirms.
  // (Reply, Add reaction, Edit, Delete: the first is the toolbar's one stop.)
  assert.deepEqual(await mine.locator('.msg-actions button').evaluateAll((bs) => bs.map((b) => b.tabIndex)), [0, -1, -1, -1],
    'one focus stop per message');
  await mine.getByRole('button', { name: 'Edit message' }).focus();
  await b.page.keyboard.press('ArrowRight');
  assert.equal(await b.page.evaluate(() => document.activeElement?.getAttribute('aria-label')), 'Delete message');
  assert.equal(await mine.locator('.msg-actions').evaluate((n) => getComputedStyle(n).opacity), '1', 'visible with keyboard focus');
  await b.page.keyboard.press('Enter');
  const dlg = b.page.getByRole('dialog', { name: 'Delete this message?' });
  await dlg.locator('#delete-preview').filter({ hasText: 'the first draft' }).waitFor();
  await dlg.getByRole('button', { name: 'Delete' }).click();
  await dlg.waitFor({ state: 'hidden' });
  for (const p of [a.page, b.page]) {
    await bySeq(p, seq).locator('.msg-body').filter({ hasText: /^Message deleted$/ }).waitFor();
    assert.equal(await bySeq(p, seq).getByRole('button').count(), 0, 'a tombstone has no actions');
    assert.equal(await p.locator('#message-list .msg-body', { hasText: 'the first draft' }).count(), 0);
  }

  // The room owner may delete others' messages (but not edit them).
  await sendMessage(b.page, 'moderate me');
  await expectExactly(a.page, 'moderate me');
  const theirs = item(a.page, 'moderate me');
  const theirSeq = await theirs.getAttribute('data-seq');
  await theirs.hover();
  assert.equal(await theirs.getByRole('button', { name: 'Edit message' }).count(), 0);
  await theirs.getByRole('button', { name: 'Delete message' }).click();
  const adlg = a.page.getByRole('dialog', { name: 'Delete this message?' });
  await adlg.locator('#delete-text').filter({ hasText: `from ${writer}` }).waitFor();
  await adlg.getByRole('button', { name: 'Delete' }).click();
  await adlg.waitFor({ state: 'hidden' });
  await bySeq(b.page, theirSeq).locator('.msg-body').filter({ hasText: /^Message deleted$/ }).waitFor();

  // History after a reload shows the tombstones and the edit.
  await b.page.reload();
  await waitConnected(b.page);
  await bySeq(b.page, seq).locator('.msg-body').filter({ hasText: /^Message deleted$/ }).waitFor();
  await bySeq(b.page, theirSeq).locator('.msg-body').filter({ hasText: /^Message deleted$/ }).waitFor();
  await expectExactly(b.page, 'from the owner');

  await assertNoGapsNoDuplicates(a.page);
  await assertNoGapsNoDuplicates(b.page);
  assert.deepEqual(a.problems(), []);
  assert.deepEqual(b.problems(), []);
  await a.context.close();
  await b.context.close();
});

test('an edit made while a page was offline shows once it reconnects', async () => {
  const a = await newPage(browser);
  const b = await newPage(browser);
  const room = uniq('later');
  await register(a.page, uniq('pia'));
  await register(b.page, uniq('quin'));
  await createRoom(a.page, room);
  await joinPublicRoom(b.page, room);
  await sendMessage(a.page, 'version one');
  await expectExactly(b.page, 'version one');
  const seq = await item(a.page, 'version one').getAttribute('data-seq');

  await b.context.setOffline(true);
  await b.page.locator('#conn-banner').waitFor({ state: 'visible' });
  const res = await a.context.request.patch(`/api/v1/rooms/${room}/messages/${seq}`, { data: { body: 'version two' } });
  assert.equal(res.status(), 200, await res.text());
  await expectExactly(a.page, 'version two');
  await b.context.setOffline(false);
  await waitConnected(b.page);
  await expectExactly(b.page, 'version two');
  assert.deepEqual(a.problems(), []);
  assert.deepEqual(b.problems(), []);
  await a.context.close();
  await b.context.close();
});
