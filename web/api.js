// REST client for /api/v1 (docs/PROTOCOL.md §4).
//
// Authentication relies only on the HttpOnly, SameSite=Strict cookie `parley_token` that
// POST /login sets: the page never reads, stores or forwards the token itself, so no script
// (ours or anyone's) can leak it.

const BASE = '/api/v1';

/** An error answered by the server: `code` is the stable machine code from the protocol. */
export class ApiError extends Error {
  constructor(status, code, message, retryAfter) {
    super(message || code || `HTTP ${status}`);
    this.name = 'ApiError';
    this.status = status;
    this.code = code || 'http_' + status;
    this.retryAfter = retryAfter;
  }
}

async function request(method, path, body) {
  const init = {
    method,
    credentials: 'same-origin',
    headers: { Accept: 'application/json' },
    cache: 'no-store',
  };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(BASE + path, init);
  } catch (e) {
    throw new ApiError(0, 'network', 'Cannot reach the server. Check your connection.');
  }
  if (res.status === 204) return null;
  let data = null;
  const text = await res.text();
  if (text) {
    try { data = JSON.parse(text); } catch { data = null; }
  }
  if (!res.ok) {
    const err = (data && data.error) || {};
    const retry = Number(res.headers.get('Retry-After')) || undefined;
    throw new ApiError(res.status, err.code, err.message, retry);
  }
  return data;
}

const enc = encodeURIComponent;

export const api = {
  register: (username, password, display_name) =>
    request('POST', '/register', display_name ? { username, password, display_name } : { username, password }),
  login: (username, password) => request('POST', '/login', { username, password }),
  logout: () => request('POST', '/logout'),
  me: () => request('GET', '/me'),
  updateMe: (display_name) => request('PATCH', '/me', { display_name }),
  myRooms: () => request('GET', '/me/rooms'),
  publicRooms: () => request('GET', '/rooms'),
  createRoom: (name, visibility) => request('POST', '/rooms', { name, visibility }),
  room: (ref) => request('GET', `/rooms/${enc(ref)}`),
  members: (ref) => request('GET', `/rooms/${enc(ref)}/members`),
  join: (ref) => request('POST', `/rooms/${enc(ref)}/join`),
  leave: (ref) => request('POST', `/rooms/${enc(ref)}/leave`),
  dms: () => request('GET', '/dms'),
  openDm: (username) => request('POST', '/dms', { username }),
  invite: (ref, username) => request('POST', `/rooms/${enc(ref)}/invites`, { username }),
  config: () => request('GET', '/config'),
  search: (q, cursor) => request('GET', `/search?q=${encodeURIComponent(q)}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`),
  invites: () => request('GET', '/me/invites'),
  acceptInvite: (ref) => request('POST', `/me/invites/${enc(ref)}/accept`),
  declineInvite: (ref) => request('POST', `/me/invites/${enc(ref)}/decline`),
  // moderation and settings (owner and admins; `transfer` and `setVisibility` the owner only)
  kick: (ref, username) => request('POST', `/rooms/${enc(ref)}/kick`, { username }),
  ban: (ref, username) => request('POST', `/rooms/${enc(ref)}/ban`, { username }),
  unban: (ref, username) => request('POST', `/rooms/${enc(ref)}/unban`, { username }),
  setRole: (ref, username, role) => request('POST', `/rooms/${enc(ref)}/roles`, { username, role }),
  transfer: (ref, username) => request('POST', `/rooms/${enc(ref)}/owner`, { username }),
  bans: (ref) => request('GET', `/rooms/${enc(ref)}/bans`),
  updateRoom: (ref, changes) => request('PATCH', `/rooms/${enc(ref)}`, changes),
  webhooks: (ref) => request('GET', `/rooms/${enc(ref)}/webhooks`),
  addWebhook: (ref, url) => request('POST', `/rooms/${enc(ref)}/webhooks`, { url }),
  deleteWebhook: (ref, id) => request('DELETE', `/rooms/${enc(ref)}/webhooks/${enc(id)}`),
  deadDeliveries: (ref) => request('GET', `/rooms/${enc(ref)}/webhooks/dead`),
  messages: (ref, params = {}) => {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null) q.set(k, String(v));
    const qs = q.toString();
    return request('GET', `/rooms/${enc(ref)}/messages${qs ? '?' + qs : ''}`);
  },
};

/** Words for people, per protocol error code; falls back to the server's own message. */
const FRIENDLY = {
  network: 'Cannot reach the server. Check your connection.',
  invalid_username: 'Usernames are 3–32 letters, digits, _ or -, and start with a letter.',
  invalid_password: 'Passwords are 8 to 256 characters long.',
  invalid_display_name: 'Display names are 1–64 characters, without control characters.',
  invalid_room_name: 'Room names are 1–48 letters, digits, _ or -, and start with a letter.',
  invalid_credentials: 'Wrong username or password.',
  username_taken: 'That username is taken.',
  room_name_taken: 'A room with that name already exists.',
  room_not_found: 'No such room (or it is private and you are not invited).',
  user_not_found: 'No user with that name.',
  not_a_member: 'You are not a member of this room.',
  empty_message: 'The message is empty.',
  message_too_large: 'The message is too long.',
  forbidden: 'You are not allowed to do that here.',
  banned: 'You are banned from this room.',
  message_not_found: 'That message no longer exists.',
  unauthorized: 'Your session has ended. Please log in again.',
  internal: 'The server had a problem. Please try again.',
};

export function describeError(err) {
  if (!err) return 'Something went wrong.';
  if (err.code === 'too_many_attempts') {
    return err.retryAfter
      ? `Too many failed attempts. Try again in ${err.retryAfter} s.`
      : 'Too many failed attempts. Try again later.';
  }
  return FRIENDLY[err.code] || err.message || 'Something went wrong.';
}
