// 4. Markup in messages and names is shown as text and runs nothing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  launch, newPage, register, uniq, createRoom, joinPublicRoom, sendMessage, expectExactly, waitConnected,
} from './helpers.js';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

test('a message with HTML shows as text and runs nothing', async () => {
  const a = await newPage(browser);
  const b = await newPage(browser);
  const dialogs = [];
  for (const p of [a.page, b.page]) {
    p.on('dialog', async (d) => { dialogs.push(d.message()); await d.dismiss(); });
  }
  const room = uniq('xss');
  await register(a.page, uniq('mallory'));
  await register(b.page, uniq('victim'));

  // A hostile display name too.
  await a.page.getByRole('button', { name: 'Change display name' }).click();
  const dlg = a.page.getByRole('dialog', { name: 'Your profile' });
  const evilName = '<img src=x onerror=alert(3)><b>M</b>';
  await dlg.getByLabel('Display name').fill(evilName);
  await dlg.getByRole('button', { name: 'Save' }).click();
  await dlg.waitFor({ state: 'hidden' });
  await a.page.locator('#me-display').filter({ hasText: evilName }).waitFor();
  // A fresh connection, so that the new name is on every message whatever the server caches.
  await a.page.reload();
  await waitConnected(a.page);
  await a.page.locator('#me-display').filter({ hasText: evilName }).waitFor();

  await createRoom(a.page, room);
  await joinPublicRoom(b.page, room);

  const payloads = [
    '<img src=x onerror=alert(1)>',
    '<script>alert(2)</script>',
    '<svg onload="window.__pwned=1"></svg><iframe src="javascript:alert(4)"></iframe>',
    '"><img src=x onerror="window.__pwned=2">&amp; &lt;b&gt;',
  ];
  for (const p of payloads) await sendMessage(a.page, p);
  for (const p of payloads) {
    await expectExactly(b.page, p);
    await expectExactly(a.page, p);
  }
  // The hostile name is shown as text on the other page.
  await b.page.locator('#message-list .msg-sender').filter({ hasText: evilName }).first().waitFor();

  for (const p of [a.page, b.page]) {
    assert.equal(await p.locator('#message-list img').count(), 0, 'no img inside the message list');
    assert.equal(await p.locator('#message-list script, #message-list iframe, #message-list b').count(), 0);
    // The only SVGs in the list are our own action icons (sprite references), none from a message.
    assert.equal(await p.locator('#message-list .msg-main svg').count(), 0);
    assert.equal(await p.locator('#messages svg:not(.msg-actions svg.icon)').count(), 0);
    assert.equal(await p.evaluate(() => window.__pwned), undefined);
  }
  assert.equal(await a.page.locator('.me-bar img, .me-bar b').count(), 0);
  assert.deepEqual(dialogs, [], 'no alert/confirm/prompt dialog was opened');
  assert.deepEqual(a.problems(), []);
  assert.deepEqual(b.problems(), []);
  await a.context.close();
  await b.context.close();
});
