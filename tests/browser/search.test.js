// Search: `/` opens the search box; a hit shows its snippet as text with the match marked; choosing it
// opens the room with older history loaded back to the message, which is highlighted.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, newPage, register, uniq, createRoom, sendMessage, expectExactly } from './helpers.js';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

test('search and jump to a hit', async () => {
  const { page } = await newPage(browser);
  const name = uniq('sara');
  const room = uniq('finds');
  await register(page, name);
  await createRoom(page, room);
  const word = 'needle' + Math.random().toString(36).slice(2, 8).replace(/[^a-z0-9]/g, '');
  // The hit, then enough later messages (sent through the API: faster) that it is not on the first page.
  await sendMessage(page, `<b>bold?</b> the ${word} is here`);
  await expectExactly(page, `<b>bold?</b> the ${word} is here`);
  await page.evaluate(async ({ room }) => {
    for (let i = 0; i < 70; i++) {
      const r = await fetch(`/api/v1/rooms/${encodeURIComponent(room)}/messages`, {
        method: 'POST', credentials: 'same-origin', headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ body: `filler ${i}` }),
      });
      if (r.status === 429) {
        // As any client should: wait as long as the server's `Retry-After` says (PROTOCOL.md §1), then resend.
        const seconds = Number(r.headers.get('Retry-After')) || 1;
        await new Promise((ok) => setTimeout(ok, seconds * 1000));
        i--;
        continue;
      }
      if (!r.ok) throw new Error(`send ${r.status}`);
    }
  }, { room });
  await page.reload();
  await page.locator('#message-list li.msg-text', { hasText: 'filler 69' }).waitFor();
  assert.equal(await page.locator('#message-list li.msg-text', { hasText: word }).count(), 0, 'the hit is not loaded yet');

  await page.locator('body').click({ position: { x: 1, y: 1 } });
  await page.keyboard.press('/');
  await page.locator('#search-input').waitFor({ state: 'visible' });
  await page.locator('#search-input').fill(word.slice(0, -2) + '*');
  const hit = page.locator('#search-results li').first();
  await hit.waitFor();
  assert.equal(await page.locator('#search-results li').count(), 1);
  // The snippet is text: the <b> is shown literally, and only the matched word is in a <mark>.
  assert.equal(await hit.locator('b').count(), 0);
  assert.equal(await hit.locator('mark').textContent(), word);
  assert.match(await hit.locator('.search-hit-snippet').textContent(), /<b>bold\?<\/b> the/);

  await hit.locator('button').click();
  const target = page.locator('#message-list li.search-target');
  await target.waitFor();
  assert.match(await target.textContent(), new RegExp(word));
  assert.ok(await target.isVisible());
  assert.ok(await page.locator('#message-list li.msg-text', { hasText: 'filler 0' }).count() === 1, 'history around it is loaded');
});
