// coffer's web console — the one way it talks to the server: the documented REST API under
// /api/v1 (the OpenAPI document is /api/v1/openapi.json). Signed in through /console/login,
// the browser holds the HttpOnly session cookie `coffer_session`; every state-changing request
// (anything but GET and HEAD) also sends the token of the readable cookie `coffer_csrf` in the
// `X-CSRF-Token` header, or the API refuses it with 403. Behind an auth proxy the proxy's
// headers sign the user in instead and the cookies are absent.

/** The API's base path. */
export const API = '/api/v1';

/** An error answer of the API (an RFC 9457 problem document), or a failure to reach it. */
export class ApiError extends Error {
  /**
   * @param {number} status the HTTP status (0: the server could not be reached)
   * @param {object|null} problem the problem document ({type, title, status, detail})
   * @param {string} method
   * @param {string} path relative to /api/v1
   */
  constructor(status, problem, method = '', path = '') {
    super(problem?.detail || problem?.title || (status ? `HTTP ${status}` : 'coffer could not be reached'));
    this.name = 'ApiError';
    this.status = status;
    this.problem = problem;
    this.method = method;
    this.path = path;
  }
}

/** The value of a cookie, or null. */
export function cookie(name) {
  for (const part of document.cookie.split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) return decodeURIComponent(v.join('='));
  }
  return null;
}

/** The headers every state-changing request needs: the CSRF token, when signed in by cookie. */
export function csrfHeaders(method) {
  if (['GET', 'HEAD'].includes(method.toUpperCase())) return {};
  const token = cookie('coffer_csrf');
  return token ? { 'X-CSRF-Token': token } : {};
}

/** `/buckets/a b` with each segment of a key encoded, its slashes kept. */
export function encodeKey(key) {
  return key.split('/').map(encodeURIComponent).join('/');
}

/** A path with a query string from an object (undefined, null and '' values are left out). */
export function withQuery(path, query) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query || {})) {
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

async function problemOf(resp) {
  const type = resp.headers.get('Content-Type') || '';
  if (type.includes('json')) {
    try {
      return await resp.json();
    } catch {
      return null;
    }
  }
  return null;
}

/**
 * A call to the REST API. `path` is relative to /api/v1 ('/me/keys'); `body` is sent as JSON
 * (or as is when it is a Blob, ArrayBuffer or string with opts.raw). Resolves to the parsed
 * JSON answer, or null (204, or not JSON); rejects with an ApiError.
 * opts: { query: {…}, headers: {…}, raw: true (body not JSON), signal, response: true (resolve
 * to the Response itself, for downloads) }.
 */
export async function api(method, path, body, opts = {}) {
  method = method.toUpperCase();
  const headers = { Accept: 'application/json', ...csrfHeaders(method), ...(opts.headers || {}) };
  let payload;
  if (body !== undefined && body !== null) {
    if (opts.raw) {
      payload = body;
    } else {
      headers['Content-Type'] = 'application/json';
      payload = JSON.stringify(body);
    }
  }
  const url = API + withQuery(path, opts.query);
  let resp;
  try {
    resp = await fetch(url, { method, headers, body: payload, credentials: 'same-origin', signal: opts.signal });
  } catch (e) {
    if (e?.name === 'AbortError') throw e;
    throw new ApiError(0, null, method, path);
  }
  if (!resp.ok) throw new ApiError(resp.status, await problemOf(resp), method, path);
  if (opts.response) return resp;
  if (resp.status === 204) return null;
  const type = resp.headers.get('Content-Type') || '';
  return type.includes('json') ? resp.json() : null;
}

/**
 * Send `body` with XMLHttpRequest (for upload progress): resolves to the parsed JSON answer,
 * rejects with an ApiError, or with a DOMException named AbortError when `signal` aborts.
 * onProgress(loadedBytes) is called as the upload goes.
 */
export function upload(method, path, body, { query, headers = {}, onProgress, signal } = {}) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, API + withQuery(path, query));
    xhr.withCredentials = true;
    xhr.setRequestHeader('Accept', 'application/json');
    for (const [k, v] of Object.entries({ ...csrfHeaders(method), ...headers })) xhr.setRequestHeader(k, v);
    xhr.upload.onprogress = (e) => onProgress?.(e.loaded);
    xhr.onload = () => {
      let data = null;
      try {
        data = xhr.responseText ? JSON.parse(xhr.responseText) : null;
      } catch {
        data = null;
      }
      if (xhr.status >= 200 && xhr.status < 300) resolve(data);
      else reject(new ApiError(xhr.status, data, method, path));
    };
    xhr.onerror = () => reject(new ApiError(0, null, method, path));
    xhr.onabort = () => reject(new DOMException('cancelled', 'AbortError'));
    if (signal) {
      if (signal.aborted) {
        reject(new DOMException('cancelled', 'AbortError'));
        return;
      }
      signal.addEventListener('abort', () => xhr.abort(), { once: true });
    }
    xhr.send(body);
  });
}

/** What the user tried, for a sentence: "delete this object", from the request. */
function actionOf(err) {
  return err?.action || null;
}

/**
 * A plain-words sentence for an error, for the person using the console (never a stack trace).
 * An ApiError may carry `.action` ("delete report.csv") to say what was refused.
 */
export function describeError(err) {
  if (err?.name === 'AbortError') return 'Cancelled.';
  if (!(err instanceof ApiError)) {
    return `Something went wrong in the console: ${err?.message || err}.`;
  }
  const detail = err.problem?.detail ? ` (${err.problem.detail})` : '';
  const action = actionOf(err);
  switch (err.status) {
    case 0:
      return 'coffer could not be reached. Check your connection and try again.';
    case 400:
      return `coffer did not accept that request${detail}.`;
    case 401:
      return 'Your session has ended — sign in again.';
    case 403:
      if (err.problem?.detail === 'missing or wrong CSRF token') {
        return 'Your session is out of date — reload the page or sign in again.';
      }
      return action
        ? `You are not allowed to ${action}${detail}.`
        : `You are not allowed to do that${detail}.`;
    case 404:
      return `That was not found — it may have been deleted or you may have lost access${detail}.`;
    case 409:
      return `That conflicts with what is already there${detail}.`;
    case 410:
      return `That link has expired or was revoked${detail}.`;
    case 413:
      return `That is too large for coffer${detail}.`;
    case 416:
      return 'The requested part of the file is outside it.';
    case 503:
      return 'coffer is briefly unavailable; try again in a moment.';
    default:
      return `coffer answered with an error (${err.status})${detail}.`;
  }
}

/** Run `fn`; an ApiError it throws gets `.action` (what the user tried, in words). */
export async function attempt(action, fn) {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof ApiError && !e.action) e.action = action;
    throw e;
  }
}
