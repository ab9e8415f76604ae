// Talking to the API on this origin. The key (when the server has one) lives in this tab's session storage
// only and goes out as a bearer header on each call; a 401 asks for it and retries the call.

const KEY_NAME = 'sandcaster.apiKey';

export const apiKey = {
  get: () => sessionStorage.getItem(KEY_NAME),
  set: (k) => sessionStorage.setItem(KEY_NAME, k),
  clear: () => sessionStorage.removeItem(KEY_NAME),
};

/** An HTTP error answer of the API, with its code, message and hint. */
export class ApiError extends Error {
  constructor(status, body) {
    const e = body?.error ?? {};
    super(e.message || `the server answered ${status}`);
    this.status = status;
    this.code = e.code || `HTTP_${status}`;
    this.hint = e.hint;
    this.details = e.details;
  }
}

/** Asks the user for a key; set by app.js. Resolves once a new key is stored. */
let askForKey = async () => {
  throw new Error('no key prompt');
};
export function onKeyNeeded(fn) {
  askForKey = fn;
}

let pendingAsk = null;
function keyNeeded(refused) {
  pendingAsk ??= askForKey(refused).finally(() => (pendingAsk = null));
  return pendingAsk;
}

/** fetch() on the API with the key; a non-2xx answer throws ApiError. */
export async function api(path, init = {}) {
  for (;;) {
    const headers = new Headers(init.headers);
    const key = apiKey.get();
    if (key) headers.set('authorization', `Bearer ${key}`);
    const res = await fetch(path, { ...init, headers, cache: 'no-store', credentials: 'omit', redirect: 'error' });
    if (res.status === 401) {
      await res.body?.cancel();
      await keyNeeded(Boolean(key));
      continue;
    }
    if (!res.ok) {
      let body = null;
      try {
        body = await res.json();
      } catch {
        /* not our JSON error shape */
      }
      throw new ApiError(res.status, body);
    }
    return res;
  }
}

export const getJson = async (path, init) => (await api(path, init)).json();

/** The path of one returned file (each segment encoded). */
export const filePath = (runId, path) => `/runs/${encodeURIComponent(runId)}/files/${path.split('/').map(encodeURIComponent).join('/')}`;
