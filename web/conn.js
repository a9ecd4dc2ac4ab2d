// One WebSocket to /ws (subprotocol parley.v1), authenticated by the session cookie, that
// reconnects by itself: exponential backoff with jitter, capped at MAX_DELAY_MS.
//
// It knows nothing about rooms or messages: every frame goes to `onFrame`, and replies are
// matched to requests by the `req` field (docs/PROTOCOL.md §3).

const PROTOCOL = 'parley.v1';
const BASE_DELAY_MS = 500;
const MAX_DELAY_MS = 10_000;
const PING_EVERY_MS = 25_000;   // client-side liveness check (the server pings too)
const PING_TIMEOUT_MS = 10_000; // no frame at all for this long after our ping: the link is dead
const REQUEST_TIMEOUT_MS = 20_000;

export const CLOSE = Object.freeze({
  NORMAL: 1000,
  GOING_AWAY: 1001,      // server shutting down: reconnect
  TOO_BIG: 1009,
  SESSION_ENDED: 4001,   // log in again
  TOO_SLOW: 4008,        // send queue overflowed: reconnect and fetch history
});

/** Backoff delay for the n-th consecutive failed attempt (0-based): "equal jitter". */
export function backoffDelay(attempt) {
  const ceiling = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** Math.min(attempt, 10));
  return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
}

export class RequestError extends Error {
  constructor(code, message) {
    super(message || code);
    this.name = 'RequestError';
    this.code = code;
  }
}

export class Connection {
  /**
   * @param {object} h
   * @param {(frame: object) => void} h.onFrame         every frame, replies included
   * @param {(state: string, info: object) => void} h.onState  'connecting' | 'open' | 'reconnecting' | 'stopped'
   * @param {(code: number) => void} h.onSessionEnded   close 4001 or a refused upgrade with a dead session
   * @param {() => Promise<boolean>} h.checkSession     true while the session is alive (used after a failed upgrade)
   */
  constructor(h) {
    this.h = h;
    this.ws = null;
    this.attempt = 0;
    this.timer = null;
    this.pingTimer = null;
    this.deadTimer = null;
    this.pending = new Map(); // req -> {resolve, reject, timer}
    this.reqCounter = 0;
    this.stopped = true;
    this.state = 'stopped';
    this.nextRetryAt = 0;
    this.lastClose = null;
    this._onOnline = () => this.retryNow();
    this._onOffline = () => { if (this.ws) this._drop(4000, 'browser went offline'); };
  }

  url() {
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    return `${proto}//${location.host}/ws`;
  }

  start() {
    if (!this.stopped) return;
    this.stopped = false;
    addEventListener('online', this._onOnline);
    addEventListener('offline', this._onOffline);
    this._connect();
  }

  stop() {
    this.stopped = true;
    removeEventListener('online', this._onOnline);
    removeEventListener('offline', this._onOffline);
    clearTimeout(this.timer);
    this._stopPings();
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      try { ws.close(CLOSE.NORMAL); } catch { /* already closing */ }
    }
    this._failPending('stopped');
    this._setState('stopped');
  }

  /** Skip the rest of the backoff wait and try at once. */
  retryNow() {
    if (this.stopped || this.ws) return;
    clearTimeout(this.timer);
    this._connect();
  }

  isOpen() {
    return this.state === 'open' && this.ws && this.ws.readyState === WebSocket.OPEN;
  }

  /** Send one frame; false when there is no open socket (the caller keeps it for later). */
  send(frame) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    try {
      this.ws.send(JSON.stringify(frame));
      return true;
    } catch {
      return false;
    }
  }

  /** Send a frame with a fresh `req` and resolve with the reply carrying it (error → reject). */
  request(frame, timeoutMs = REQUEST_TIMEOUT_MS) {
    const req = 'r' + (++this.reqCounter).toString(36);
    return new Promise((resolve, reject) => {
      if (!this.send({ ...frame, req })) {
        reject(new RequestError('not_connected', 'not connected'));
        return;
      }
      const timer = setTimeout(() => {
        this.pending.delete(req);
        reject(new RequestError('timeout', 'the server did not answer in time'));
      }, timeoutMs);
      this.pending.set(req, { resolve, reject, timer });
    });
  }

  // ── internals ──────────────────────────────────────────────────────────────

  _setState(state, info = {}) {
    this.state = state;
    this.h.onState?.(state, info);
  }

  _connect() {
    if (this.stopped || this.ws) return; // never two sockets at once
    clearTimeout(this.timer);
    let ws;
    this._setState(this.attempt === 0 && !this.lastClose ? 'connecting' : 'reconnecting',
      { attempt: this.attempt, lastClose: this.lastClose });
    try {
      ws = new WebSocket(this.url(), PROTOCOL);
    } catch {
      this._scheduleReconnect();
      return;
    }
    this.ws = ws;
    let opened = false;
    ws.onopen = () => { opened = true; this._startPings(); };
    ws.onmessage = (ev) => this._onMessage(ev);
    ws.onerror = () => { /* a close event always follows */ };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this._stopPings();
      this._failPending('closed');
      this.lastClose = { code: ev.code, reason: ev.reason, opened };
      if (this.stopped) return;
      if (ev.code === CLOSE.SESSION_ENDED) {
        this.stop();
        this.h.onSessionEnded?.(ev.code);
        return;
      }
      if (!opened && this.h.checkSession) {
        // The upgrade failed: a refused upgrade (401) looks like 1006 to a page, so ask REST
        // whether the session is still alive before backing off again.
        this.h.checkSession().then((alive) => {
          if (this.stopped) return;
          if (this.ws) return; // retryNow() already started another attempt
          if (alive === false) {
            this.stop();
            this.h.onSessionEnded?.(CLOSE.SESSION_ENDED);
          } else {
            this._scheduleReconnect();
          }
        });
        return;
      }
      this._scheduleReconnect();
    };
  }

  _scheduleReconnect() {
    if (this.stopped) return;
    const delay = backoffDelay(this.attempt);
    this.attempt += 1;
    this.nextRetryAt = Date.now() + delay;
    this._setState('reconnecting', { attempt: this.attempt, delay, lastClose: this.lastClose });
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this._connect(), delay);
  }

  _onMessage(ev) {
    this._alive();
    let frame;
    try {
      frame = JSON.parse(ev.data);
    } catch {
      return; // not JSON: ignore (clients ignore what they do not understand)
    }
    if (!frame || typeof frame !== 'object' || typeof frame.type !== 'string') return;
    if (frame.type === 'hello') {
      this.attempt = 0;
      this.lastClose = null;
      this._setState('open', {});
    }
    if (frame.req !== undefined && this.pending.has(frame.req)) {
      const p = this.pending.get(frame.req);
      this.pending.delete(frame.req);
      clearTimeout(p.timer);
      if (frame.type === 'error') p.reject(new RequestError(frame.code, frame.message));
      else p.resolve(frame);
      // Replies still go through onFrame too, so that shared handlers (ack, joined…) run once.
    }
    this.h.onFrame(frame);
  }

  _drop(code, reason) {
    const ws = this.ws;
    if (!ws) return;
    // Treat the socket as gone now; the browser may take long to notice a dead link.
    ws.onclose?.({ code: 1006, reason, wasClean: false });
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    try { ws.close(code, reason); } catch { /* ignore */ }
  }

  _startPings() {
    this._stopPings();
    this.pingTimer = setInterval(() => {
      if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return;
      this.send({ type: 'ping' });
      clearTimeout(this.deadTimer);
      this.deadTimer = setTimeout(() => this._drop(4000, 'no answer to ping'), PING_TIMEOUT_MS);
    }, PING_EVERY_MS);
  }

  _alive() {
    clearTimeout(this.deadTimer);
    this.deadTimer = null;
  }

  _stopPings() {
    clearInterval(this.pingTimer);
    clearTimeout(this.deadTimer);
    this.pingTimer = this.deadTimer = null;
  }

  _failPending(why) {
    for (const [, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new RequestError(why, 'connection ' + why));
    }
    this.pending.clear();
  }
}
