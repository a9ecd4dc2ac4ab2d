// Presence: the members panel shows who is online, live, with role badges.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, newPage, register, uniq, createRoom, joinPublicRoom } from './helpers.js';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

test('the members panel shows the other user online, then offline once their page closes', async () => {
  const a = await newPage(browser);
  const b = await newPage(browser);
  const owner = uniq('rosa');
  const guest = uniq('sam');
  const room = uniq('here');
  await register(a.page, owner);
  await createRoom(a.page, room);

  // Open the panel from the keyboard: focus moves into it.
  await a.page.getByRole('button', { name: 'Members', exact: true }).focus();
  await a.page.keyboard.press('Enter');
  const panel = a.page.getByRole('complementary', { name: `Members of #${room}` });
  await panel.waitFor();
  assert.equal(await a.page.getByRole('button', { name: 'Members', exact: true }).getAttribute('aria-expanded'), 'true');
  const me = panel.locator(`li.member[data-username="${owner}"]`);
  await me.locator('.role-badge').filter({ hasText: 'Owner' }).waitFor();
  assert.equal(await me.getAttribute('data-online'), 'true');

  // Someone joins: they appear, online (a presence frame or the refreshed list).
  await register(b.page, guest);
  await joinPublicRoom(b.page, room);
  const row = panel.locator(`li.member[data-username="${guest}"]`);
  await row.waitFor();
  await panel.locator('#online-list li.member', { hasText: guest }).waitFor();
  assert.match(await row.textContent(), /, online/);
  assert.equal(await row.locator('.role-badge').count(), 0, 'plain members have no badge');
  await panel.locator('#online-heading').filter({ hasText: 'Online — 2' }).waitFor();

  // Their page closes: they move to Offline, live.
  await b.context.close();
  await panel.locator('#offline-list li.member', { hasText: guest }).waitFor();
  assert.match(await row.textContent(), /, offline/);
  assert.equal(await row.getAttribute('data-online'), 'false');
  await panel.locator('#online-heading').filter({ hasText: 'Online — 1' }).waitFor();

  // Escape closes the panel and gives focus back to the Members button.
  await panel.getByRole('button', { name: 'Close members' }).focus();
  await a.page.keyboard.press('Escape');
  await panel.waitFor({ state: 'hidden' });
  assert.equal(await a.page.evaluate(() => document.activeElement?.id), 'members-btn');
  assert.deepEqual(a.problems(), []);
  await a.context.close();
});
