// coffer's web console — the shell and the router. The console is a set of ES modules served
// from /console (embedded in the coffer binary) that talks only to the documented REST API
// (/api/v1, see api.js): signed in through /console/login, the browser holds the HttpOnly
// session cookie `coffer_session`, and every state-changing request sends the token of the
// readable cookie `coffer_csrf` in the `X-CSRF-Token` header. Behind an auth proxy the proxy's
// headers sign you in instead.
//
// Routes (History API paths; the server answers index.html for extension-less paths):
//   /console, /console/buckets                 buckets.js   my buckets
//   /console/buckets/<name>/browse?prefix=…    browser.js   a bucket's objects
//   /console/buckets/<name>/sharing            sharing.js   a bucket's grants and share links
//   /console/links                             sharing.js   the share links I made
//   /console/keys                              keys.js      my access keys
//   /console/projects, /console/projects/<n>   projects.js  projects and members
//   /console/admin/users|quotas|audit          admin.js     the platform admin's pages
// Each page module exports `async function render(main, ctx)`; ctx = { me, params, query,
// navigate(path), refresh() }.

import { api, ApiError, describeError } from './api.js';
import { h, replace, notify, clearNotices, loading, errorBox } from './ui.js';

const PREFIX = '/console';

/** [pattern, module, export name, nav section]; patterns match the path after /console. */
const ROUTES = [
  [/^\/?$/, './buckets.js', 'render', 'buckets'],
  [/^\/buckets\/?$/, './buckets.js', 'render', 'buckets'],
  [/^\/buckets\/(?<name>[^/]+)(?:\/|\/browse\/?)?$/, './browser.js', 'render', 'buckets'],
  [/^\/buckets\/(?<name>[^/]+)\/sharing\/?$/, './sharing.js', 'render', 'buckets'],
  [/^\/links\/?$/, './sharing.js', 'renderMyLinks', 'links'],
  [/^\/keys\/?$/, './keys.js', 'render', 'keys'],
  [/^\/projects\/?$/, './projects.js', 'render', 'projects'],
  [/^\/projects\/(?<name>[^/]+)\/?$/, './projects.js', 'render', 'projects'],
  [/^\/admin\/(?<page>users|quotas|audit)\/?$/, './admin.js', 'render', 'admin'],
];

const state = { me: null, renderId: 0 };

/** The route for a location: { module, fn, section, params } or null. */
export function resolve(pathname) {
  if (!(pathname === PREFIX || pathname.startsWith(`${PREFIX}/`))) return null;
  const rest = pathname.slice(PREFIX.length);
  for (const [re, module, fn, section] of ROUTES) {
    const m = re.exec(rest);
    if (m) {
      const params = {};
      for (const [k, v] of Object.entries(m.groups || {})) params[k] = decodeURIComponent(v);
      return { module, fn, section, params };
    }
  }
  return null;
}

/** Go to an app path (`/console/…`, with its query) without reloading the page. */
export function navigate(path, { replace: replacing = false } = {}) {
  if (replacing) history.replaceState(null, '', path);
  else history.pushState(null, '', path);
  render({ focus: true });
}

function navLink(href, label, section, current) {
  return h('a', { href, class: 'nav-link', 'aria-current': section === current ? 'page' : null }, label);
}

/** The header: the nav, who is signed in, Sign out. */
function header(current) {
  const me = state.me;
  const bar = document.getElementById('topbar');
  if (!me) {
    replace(
      bar,
      h('a', { href: `${PREFIX}/`, class: 'brand' }, 'coffer'),
      h('div', { class: 'who' }, h('a', { href: `${PREFIX}/login`, class: 'button primary', id: 'sign-in' }, 'Sign in')),
    );
    return;
  }
  const links = [
    navLink(`${PREFIX}/buckets`, 'Buckets', 'buckets', current),
    navLink(`${PREFIX}/links`, 'Share links', 'links', current),
    navLink(`${PREFIX}/keys`, 'Access keys', 'keys', current),
    navLink(`${PREFIX}/projects`, 'Projects', 'projects', current),
  ];
  const admin = me.is_admin
    ? h(
        'div',
        { class: 'nav-admin', role: 'group', 'aria-label': 'Administration' },
        h('span', { class: 'nav-label' }, 'Admin:'),
        navLink(`${PREFIX}/admin/users`, 'Users', 'admin-users', current),
        navLink(`${PREFIX}/admin/quotas`, 'Quotas', 'admin-quotas', current),
        navLink(`${PREFIX}/admin/audit`, 'Audit', 'admin-audit', current),
      )
    : null;
  const signOut =
    me.authenticated_by === 'session'
      ? h('form', { method: 'post', action: `${PREFIX}/logout`, class: 'sign-out' }, h('button', { type: 'submit', class: 'button' }, 'Sign out'))
      : null;
  replace(
    bar,
    h('a', { href: `${PREFIX}/buckets`, class: 'brand' }, 'coffer'),
    h('nav', { 'aria-label': 'Main' }, h('div', { class: 'nav-main' }, links), admin),
    h(
      'div',
      { class: 'who' },
      h('span', { class: 'user', title: `groups: ${me.groups.join(', ') || 'none'}; clearance: ${me.clearance.join(', ')}` }, 'Signed in as ', h('strong', { id: 'user-name' }, me.name)),
      signOut,
    ),
  );
}

function signedOut(main) {
  replace(
    main,
    h('h1', { tabindex: '-1' }, 'Welcome to coffer'),
    h('p', null, 'coffer keeps your buckets and your projects’ data, and lets you share it with exact rights.'),
    h('p', null, 'You are not signed in.'),
    h('p', null, h('a', { class: 'button primary', href: `${PREFIX}/login` }, 'Sign in')),
  );
}

/** Ask who is signed in; null when nobody is (401). */
async function whoAmI() {
  try {
    return await api('GET', '/me');
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return null;
    throw e;
  }
}

/** Render the page of the current location. */
export async function render({ focus = false, reloadMe = false } = {}) {
  const id = ++state.renderId;
  const main = document.getElementById('main');
  clearNotices({ errorsOnly: true });
  if (state.me === null || reloadMe) {
    try {
      state.me = await whoAmI();
    } catch (e) {
      header(null);
      replace(main, h('h1', { tabindex: '-1' }, 'coffer'), errorBox(describeError(e)));
      return;
    }
  }
  const route = resolve(location.pathname);
  const section = route?.section === 'admin' ? `admin-${route.params.page}` : route?.section;
  header(section);
  if (!state.me) {
    signedOut(main);
    return;
  }
  if (!route) {
    replace(main, h('h1', { tabindex: '-1' }, 'Page not found'), h('p', null, 'There is no such page in the console. ', h('a', { href: `${PREFIX}/buckets` }, 'Go to your buckets.')));
    return;
  }
  replace(main, loading());
  const ctx = {
    me: state.me,
    params: route.params,
    query: new URLSearchParams(location.search),
    navigate,
    refresh: () => render(),
  };
  try {
    const mod = await import(route.module);
    if (id !== state.renderId) return;
    main.replaceChildren();
    const fn = mod[route.fn] || mod.render;
    await fn(main, ctx);
  } catch (e) {
    if (id !== state.renderId) return;
    if (e instanceof ApiError && e.status === 401) {
      state.me = null;
      header(null);
      signedOut(main);
      notify(describeError(e), 'error');
      return;
    }
    main.append(errorBox(describeError(e)));
    if (!(e instanceof ApiError)) console.error(e);
  }
  if (focus && id === state.renderId) {
    const heading = main.querySelector('h1');
    if (heading) {
      if (!heading.hasAttribute('tabindex')) heading.setAttribute('tabindex', '-1');
      heading.focus({ preventScroll: false });
    }
  }
}

/** Is this click one the router should take (a plain click on an app link)? */
function routable(e, a) {
  if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return false;
  if (a.target && a.target !== '_self') return false;
  if ((a.getAttribute('href') || '').startsWith('#')) return false;
  if (a.hasAttribute('download')) return false;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin) return false;
  if (!(url.pathname === PREFIX || url.pathname.startsWith(`${PREFIX}/`))) return false;
  // Signing in and out are the server's, not the app's.
  // Names may hold dots (a bucket `my.data`): only the app's own kinds of file are files.
  const file = /\.(js|mjs|css|json|map|svg|png|jpe?g|gif|webp|ico|woff2?|txt|wasm|html)$/i.test(url.pathname);
  return !/^\/console\/(login|callback|logout)\b/.test(url.pathname) && !file;
}

document.addEventListener('click', (e) => {
  const a = e.target.closest?.('a[href]');
  if (!a || !routable(e, a)) return;
  e.preventDefault();
  const url = new URL(a.href, location.href);
  if (url.pathname + url.search === location.pathname + location.search) {
    render({ focus: true });
  } else {
    navigate(url.pathname + url.search + url.hash);
  }
});

window.addEventListener('popstate', () => render({ focus: true }));

render();
