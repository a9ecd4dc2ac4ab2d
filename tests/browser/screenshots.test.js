// 5. Screenshots at desktop (1280×800) and phone (390×844) widths, light and dark, written
//    under target/browser/ for people to look at.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { launch, newPage, uniq, PASSWORD, BASE, SHOTS, waitConnected, screenshot, expectExactly } from './helpers.js';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

/** A logged-in API client (its own context, so its own cookie). */
async function apiUser(username, displayName) {
  const ctx = await browser.newContext({ baseURL: BASE });
  let r = await ctx.request.post('/api/v1/register', { data: { username, password: PASSWORD } });
  assert.equal(r.status(), 201, await r.text());
  r = await ctx.request.post('/api/v1/login', { data: { username, password: PASSWORD } });
  assert.equal(r.status(), 200, await r.text());
  r = await ctx.request.patch('/api/v1/me', { data: { display_name: displayName } });
  assert.equal(r.status(), 200, await r.text());
  const call = async (method, path, data) => {
    const res = await ctx.request.fetch(path, { method, data });
    assert.ok(res.ok(), `${method} ${path}: ${res.status()} ${await res.text()}`);
    return res.status() === 204 ? null : res.json();
  };
  return { ctx, username, call };
}

async function makeRoom(user, name, visibility = 'public') {
  const res = await user.ctx.request.post('/api/v1/rooms', { data: { name, visibility } });
  if (res.status() === 409) return makeRoom(user, uniq(name), visibility); // a reused server
  assert.equal(res.status(), 201, await res.text());
  return res.json();
}

test('screenshots at desktop and phone widths, light and dark', async () => {
  const alice = await apiUser(uniq('alice'), 'Alice Martin');
  const bob = await apiUser(uniq('bob'), 'Bob Chen');
  const chidi = await apiUser(uniq('chidi'), 'Chidi Okafor');

  const general = await makeRoom(alice, 'general');
  const design = await makeRoom(alice, 'design');
  const random = await makeRoom(alice, 'random');
  await makeRoom(alice, 'core-team', 'private');
  for (const u of [bob, chidi]) await u.call('POST', `/api/v1/rooms/${general.id}/join`);
  await bob.call('POST', `/api/v1/rooms/${design.id}/join`);
  await bob.call('POST', `/api/v1/rooms/${random.id}/join`);

  const say = (u, room, body) => u.call('POST', `/api/v1/rooms/${room.id}/messages`, { body });
  await alice.call('PATCH', `/api/v1/rooms/${general.id}`, { topic: 'Releases, reviews and everyday chatter' });
  await alice.call('POST', `/api/v1/rooms/${general.id}/roles`, { username: bob.username, role: 'admin' });
  await say(bob, general, 'Morning! Did the deploy go out?');
  await say(alice, general, 'Yes, v0.4 has been live since 9:10.');
  const banner = await say(chidi, general, 'Nice. The reconect banner is clearer.');
  await chidi.call('PATCH', `/api/v1/rooms/${general.id}/messages/${banner.seq}`, { body: 'Nice. The reconnect banner is much clearer now.' });
  await say(chidi, general, 'I pulled the cable on my laptop and it picked up exactly where it left off.');
  const oops = await say(bob, general, 'oops, that was meant for #random');
  await bob.call('DELETE', `/api/v1/rooms/${general.id}/messages/${oops.seq}`);
  await say(bob, general, `@${alice.username} could you look at the release notes before lunch?`);
  await say(alice, general, 'Already there: open the room list and you will see them.\nThey count from the last message you saw in each room.');
  await say(chidi, general, '<b>Not bold</b>: markup stays plain text.');

  // A direct conversation between Chidi and Alice.
  const dm = await chidi.call('POST', '/api/v1/dms', { username: alice.username });
  await say(chidi, dm.room, 'Hey, do you have five minutes for the on-call handover?');
  await say(alice, dm.room, 'Sure, after standup.');
  await say(chidi, dm.room, 'Great, I will bring the runbook.');

  // Bob has the page open (so he shows as online).
  const bobPage = await bob.ctx.newPage();
  await bobPage.goto('/');
  await waitConnected(bobPage);

  // Alice's browser: log in through the page, then others write in rooms she does not have open.
  const { context, page, problems } = await newPage(browser, { viewport: { width: 1280, height: 800 } });
  await page.goto(`/#${general.name}`);
  await page.locator('#auth-form').getByLabel('Username').fill(alice.username);
  await page.locator('#auth-form').getByLabel('Password', { exact: true }).fill(PASSWORD);
  await page.locator('#auth-form').getByRole('button', { name: 'Log in' }).click();
  await waitConnected(page);
  await page.locator('#room-title').filter({ hasText: general.name }).waitFor();
  await say(bob, design, 'New icons are in the Figma file.');
  await say(bob, design, 'Feedback welcome before Friday.');
  await say(bob, design, 'Especially on the dark theme.');
  await say(bob, design, `@${alice.username} what do you think of the new icons?`);
  await say(bob, random, 'Lunch at 12:30?');
  await page.locator('#room-list .room-btn', { hasText: design.name }).locator('.badge').filter({ hasText: '4' }).waitFor();
  await page.locator('#room-list .room-btn', { hasText: design.name }).locator('.mention-badge').filter({ hasText: '@1' }).waitFor();
  await page.locator('#message-list li.msg-deleted').waitFor();
  await page.locator('#message-list li.msg-mention').waitFor();
  await page.locator('#room-list .room-btn', { hasText: random.name }).locator('.badge').filter({ hasText: '1' }).waitFor();
  await page.locator('#composer-input').fill('Sounds good, see you there');
  await page.locator('#composer-input').press('Enter');
  await expectExactly(page, 'Sounds good, see you there');
  await page.locator('#composer-input').fill('Drafting a reply…');

  const files = [];
  await page.emulateMedia({ colorScheme: 'light' });
  files.push(await screenshot(page, 'desktop-light'));
  await page.emulateMedia({ colorScheme: 'dark' });
  files.push(await screenshot(page, 'desktop-dark'));

  await page.setViewportSize({ width: 390, height: 844 });
  await page.emulateMedia({ colorScheme: 'light' });
  await page.locator('#drawer-open').waitFor({ state: 'visible' });
  files.push(await screenshot(page, 'phone-light'));
  await page.emulateMedia({ colorScheme: 'dark' });
  files.push(await screenshot(page, 'phone-dark'));

  // The drawer, opened from the keyboard, and closed with Escape.
  await page.locator('#drawer-open').focus();
  await page.keyboard.press('Enter');
  await page.locator('#sidebar').waitFor({ state: 'visible' });
  await page.waitForFunction(() => document.getElementById('sidebar').contains(document.activeElement));
  await page.waitForFunction(() => getComputedStyle(document.getElementById('sidebar')).transform === 'none');
  files.push(await screenshot(page, 'phone-dark-drawer'));
  await page.emulateMedia({ colorScheme: 'light' });
  files.push(await screenshot(page, 'phone-light-drawer'));
  await page.keyboard.press('Escape');
  await page.waitForFunction(() => !document.querySelector('.app').classList.contains('drawer-open'));

  // A dialog, at desktop width.
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.getByRole('button', { name: 'Create a room' }).click();
  await page.getByRole('dialog', { name: 'Create a room' }).waitFor();
  files.push(await screenshot(page, 'desktop-light-dialog'));
  await page.keyboard.press('Escape');
  await page.getByRole('dialog', { name: 'Create a room' }).waitFor({ state: 'hidden' });

  // The members panel, with who is online, at desktop width, then on a phone.
  await page.emulateMedia({ colorScheme: 'light' });
  await page.getByRole('button', { name: 'Members', exact: true }).click();
  const panel = page.getByRole('complementary', { name: `Members of #${general.name}` });
  await panel.locator(`#online-list li.member[data-username="${bob.username}"]`).waitFor();
  await panel.locator(`#offline-list li.member[data-username="${chidi.username}"]`).waitFor();
  files.push(await screenshot(page, 'desktop-light-members'));
  await page.emulateMedia({ colorScheme: 'dark' });
  files.push(await screenshot(page, 'desktop-dark-members'));
  await page.setViewportSize({ width: 390, height: 844 });
  files.push(await screenshot(page, 'phone-dark-members'));
  await page.keyboard.press('Escape');
  await panel.waitFor({ state: 'hidden' });
  await page.setViewportSize({ width: 1280, height: 800 });

  // The direct conversation, and one of Alice's own messages with its actions shown.
  await page.locator('#dm-list .room-btn', { hasText: 'Chidi Okafor' }).click();
  await page.locator('#room-title').filter({ hasText: 'Chidi Okafor' }).waitFor();
  await expectExactly(page, 'Great, I will bring the runbook.');
  await page.locator('#composer-input').fill('');
  files.push(await screenshot(page, 'desktop-dark-dm'));
  await page.emulateMedia({ colorScheme: 'light' });
  const ownSeq = await page.locator('#message-list li.msg-mine', { hasText: 'Sure, after standup.' }).getAttribute('data-seq');
  const own = page.locator(`#message-list li[data-seq="${ownSeq}"]`);
  await own.getByRole('button', { name: 'Edit message' }).focus();
  files.push(await page.screenshot({ path: `${SHOTS}/desktop-light-dm-actions.png` }).then(() => `${SHOTS}/desktop-light-dm-actions.png`));
  await page.keyboard.press('Enter');
  await own.getByRole('textbox', { name: 'Edit message' }).waitFor();
  files.push(await page.screenshot({ path: `${SHOTS}/desktop-light-dm-editing.png` }).then(() => `${SHOTS}/desktop-light-dm-editing.png`));
  await page.keyboard.press('Escape');
  await page.setViewportSize({ width: 390, height: 844 });
  files.push(await screenshot(page, 'phone-light-dm'));

  // The login screen.
  const anon = await newPage(browser, { viewport: { width: 1280, height: 800 } });
  await anon.page.goto('/');
  await anon.page.locator('#auth-screen').waitFor({ state: 'visible' });
  files.push(await screenshot(anon.page, 'login-desktop-light'));
  await anon.page.setViewportSize({ width: 390, height: 844 });
  await anon.page.emulateMedia({ colorScheme: 'dark' });
  files.push(await screenshot(anon.page, 'login-phone-dark'));

  for (const f of files) assert.ok(fs.statSync(f).size > 10_000, `${f} looks empty`);
  assert.deepEqual(problems(), []);
  assert.deepEqual(anon.problems(), []);
  for (const c of [context, anon.context, alice.ctx, bob.ctx, chidi.ctx]) await c.close();
});
