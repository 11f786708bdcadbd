// "Projects" (/console/projects and /console/projects/<name>): the projects the signed-in user
// is a member of, creating one, and a project's page — its buckets and members, where its
// admins add a user or group with a role, change a role, remove a member (after a
// confirmation) and delete the project. Uses GET|POST /projects, GET|DELETE /projects/{name},
// GET|PUT /projects/{name}/members and DELETE /projects/{name}/members/{kind}/{member}.

import { api, ApiError, describeError, attempt } from './api.js';
import { h, notify, confirmDialog, formatTime, errorBox, loading, badge, field, nextId } from './ui.js';

const NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const MEMBER = /^[A-Za-z0-9._@:-]{1,128}$/;
const ROLES = [
  ['read', 'read — list and download'],
  ['write', 'write — also upload and delete'],
  ['admin', 'admin — also manage members and the project'],
];


const projectPath = (name) => `/console/projects/${encodeURIComponent(name)}`;
const apiPath = (name) => `/projects/${encodeURIComponent(name)}`;

/** This page's styles (pages.css), linked once, unless index.html links them already. */
function ensureStyles() {
  if (!document.querySelector('link[href="/console/pages.css"]')) {
    document.head.append(h('link', { rel: 'stylesheet', href: '/console/pages.css' }));
  }
}

export async function render(main, ctx) {
  ensureStyles();
  if (ctx.params?.name) return renderProject(main, ctx, ctx.params.name);
  return renderList(main, ctx);
}

// ---------------------------------------------------------------------------------------------
// The list
// ---------------------------------------------------------------------------------------------

async function renderList(main, ctx) {
  const listSlot = h('section', { class: 'projects-list', 'aria-labelledby': 'projects-list-title' }, loading('Loading your projects…'));
  main.append(
    h('h1', { tabindex: '-1' }, 'Projects'),
    h('p', { class: 'lede' },
      'A project is a team’s storage: it owns a bucket of the same name, and its members — users and groups, each with a role — may use every bucket the project owns.'),
    createForm(ctx),
    listSlot,
  );
  let projects;
  try {
    projects = await api('GET', '/projects');
  } catch (err) {
    listSlot.replaceChildren(h('h2', { id: 'projects-list-title' }, 'Your projects'),
      errorBox(`Your projects could not be loaded: ${describeError(err)}`));
    return;
  }
  const parts = [h('h2', { id: 'projects-list-title' }, 'Your projects')];
  if (!projects.length) {
    parts.push(h('p', { class: 'empty-state' }, 'You are not a member of any project yet. Create one above, or ask a project’s admin to add you.'));
  } else {
    parts.push(h('div', { class: 'table-wrap' },
      h('table', { class: 'table projects' },
        h('caption', { class: 'visually-hidden' }, 'Projects you are a member of'),
        h('thead', {}, h('tr', {},
          h('th', { scope: 'col' }, 'Project'),
          h('th', { scope: 'col' }, 'Your role'),
          h('th', { scope: 'col' }, 'Buckets'),
          h('th', { scope: 'col' }, 'Created'))),
        h('tbody', {}, ...projects.map((p) => h('tr', { dataset: { project: p.name } },
          h('td', { 'data-label': 'Project' }, h('a', { href: projectPath(p.name) }, p.name)),
          h('td', { 'data-label': 'Your role' }, badge(p.role, `role-${p.role}`)),
          h('td', { 'data-label': 'Buckets' }, p.buckets.map((b) => b.name).join(', ')),
          h('td', { 'data-label': 'Created' }, formatTime(p.created_at))))))));
  }
  listSlot.replaceChildren(...parts);
}

function createForm(ctx) {
  const name = h('input', { type: 'text', name: 'name', 'aria-required': 'true', autocomplete: 'off', spellcheck: 'false',
    maxlength: '63', placeholder: 'e.g. climate-models' });
  const submit = h('button', { type: 'submit', class: 'button primary' }, 'Create project');
  const problem = h('div', { class: 'form-problem', role: 'alert' });
  const form = h('form', { class: 'form-card create-project', 'aria-labelledby': 'create-project-title', novalidate: true },
    h('h2', { id: 'create-project-title' }, 'Create a project'),
    h('div', { class: 'form-row' },
      field('Project name', name, 'Also its bucket’s name: 3–63 lower-case letters, digits, dots and dashes, unique on this server. You become its admin.'),
      h('div', { class: 'actions' }, submit)),
    problem);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    problem.textContent = '';
    const value = name.value.trim();
    if (!NAME.test(value)) {
      problem.textContent = value
        ? `"${value}" cannot be a project name: use 3–63 lower-case letters, digits, dots and dashes, starting and ending with a letter or digit.`
        : 'Give the project a name.';
      name.setAttribute('aria-invalid', 'true');
      name.focus();
      return;
    }
    name.removeAttribute('aria-invalid');
    submit.disabled = true;
    try {
      await attempt(`create the project ${value}`, () => api('POST', '/projects', { name: value }));
      // (A page change clears the notices: say it on the new page.)
      ctx.navigate(projectPath(value));
      notify(`Project ${value} created. You are its admin.`, 'success');
    } catch (err) {
      problem.textContent = err instanceof ApiError && err.status === 409
        ? `The name ${value} is taken (by a bucket or another project); choose another.`
        : `The project was not created: ${describeError(err)}`;
      submit.disabled = false;
      name.focus();
    }
  });
  return form;
}

// ---------------------------------------------------------------------------------------------
// One project
// ---------------------------------------------------------------------------------------------

async function renderProject(main, ctx, name) {
  const back = h('nav', { class: 'breadcrumbs', 'aria-label': 'Breadcrumbs' },
    h('ol', {}, h('li', {}, h('a', { href: '/console/projects' }, 'Projects')), h('li', { 'aria-current': 'page' }, name)));
  const heading = h('h1', { tabindex: '-1' }, `Project ${name}`);
  main.append(back, heading);
  let project;
  let members;
  try {
    [project, members] = await Promise.all([api('GET', apiPath(name)), api('GET', `${apiPath(name)}/members`)]);
  } catch (err) {
    let text;
    if (err instanceof ApiError && err.status === 404) {
      text = `There is no project named ${name}, or it was deleted.`;
    } else if (err instanceof ApiError && err.status === 403) {
      text = `You are not a member of the project ${name}, so you cannot see it. Ask one of its admins to add you.`;
    } else {
      text = `The project could not be loaded: ${describeError(err)}`;
    }
    main.append(errorBox(text), h('p', {}, h('a', { href: '/console/projects' }, 'Back to your projects')));
    return;
  }
  const isAdmin = project.role === 'admin';
  const membersSlot = h('section', { class: 'members', 'aria-labelledby': 'members-title' });
  main.append(
    h('dl', { class: 'facts' },
      h('dt', {}, 'Your role'), h('dd', {}, badge(project.role, `role-${project.role}`)),
      h('dt', {}, 'Created'), h('dd', {}, formatTime(project.created_at)),
      h('dt', {}, project.buckets.length === 1 ? 'Bucket' : 'Buckets'),
      h('dd', {}, ...project.buckets.flatMap((b, i) => [i ? ', ' : '',
        h('a', { href: `/console/buckets/${encodeURIComponent(b.name)}` }, b.name),
        b.classification && b.classification !== 'unclassified' ? ` (${b.classification})` : '']))),
    membersSlot,
  );
  const reload = async () => {
    try {
      members = await api('GET', `${apiPath(name)}/members`);
    } catch (err) {
      membersSlot.replaceChildren(h('h2', { id: 'members-title' }, 'Members'),
        errorBox(`The members could not be loaded: ${describeError(err)}`));
      return;
    }
    showMembers(membersSlot, name, members, isAdmin, ctx, reload);
  };
  showMembers(membersSlot, name, members, isAdmin, ctx, reload);
  if (isAdmin) {
    main.append(addMemberForm(name, reload), dangerZone(name, ctx));
  } else {
    main.append(h('p', { class: 'help' }, 'Only the project’s admins can add or remove members.'));
  }
}

/** Member grants → one row per user or group (the project's own bucket's grants). */
function showMembers(slot, project, grants, isAdmin, ctx, reload) {
  const seen = new Map();
  for (const g of grants) {
    const k = `${g.grantee.kind}/${g.grantee.name}`;
    if (!seen.has(k) || g.bucket === project) seen.set(k, g);
  }
  const rows = [...seen.values()].sort((a, b) =>
    a.grantee.kind.localeCompare(b.grantee.kind) || a.grantee.name.localeCompare(b.grantee.name));
  const admins = rows.filter((g) => g.role === 'admin').length;
  const parts = [h('h2', { id: 'members-title', tabindex: '-1' }, `Members (${rows.length})`)];
  if (!rows.length) {
    parts.push(h('p', { class: 'empty-state' }, 'This project has no members.'));
  } else {
    parts.push(h('div', { class: 'table-wrap' },
      h('table', { class: 'table members' },
        h('caption', { class: 'visually-hidden' }, `Members of ${project}`),
        h('thead', {}, h('tr', {},
          h('th', { scope: 'col' }, 'Member'),
          h('th', { scope: 'col' }, 'Kind'),
          h('th', { scope: 'col' }, 'Role'),
          h('th', { scope: 'col' }, 'Since'),
          isAdmin ? h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Actions')) : null)),
        h('tbody', {}, ...rows.map((g) => memberRow(project, g, isAdmin, admins, ctx, reload))))));
  }
  slot.replaceChildren(...parts);
}

function memberRow(project, g, isAdmin, admins, ctx, reload) {
  const { kind, name } = g.grantee;
  const who = `${kind} ${name}`;
  const you = kind === 'user' && name === ctx.me?.name;
  const lastAdmin = g.role === 'admin' && admins <= 1;
  let roleCell = badge(g.role, `role-${g.role}`);
  let actions = null;
  if (isAdmin) {
    const select = h('select', { 'aria-label': `Role of ${who}`, disabled: lastAdmin,
      title: lastAdmin ? 'The project’s last admin keeps the admin role' : null },
      ...ROLES.map(([v]) => h('option', { value: v, selected: v === g.role }, v)));
    select.addEventListener('change', async () => {
      const role = select.value;
      select.disabled = true;
      try {
        await attempt(`change the role of ${who}`, () => api('PUT', `${apiPath(project)}/members`, { [kind]: name, role }));
        notify(`${cap(who)} is now ${role} in ${project}.`, 'success');
        await reload();
      } catch (err) {
        notify(`The role was not changed: ${describeError(err)}`, 'error');
        select.value = g.role;
        select.disabled = false;
      }
    });
    roleCell = select;
    const remove = h('button', { type: 'button', class: 'button danger small', disabled: lastAdmin,
      'aria-label': `Remove ${who} from ${project}`,
      title: lastAdmin ? 'A project keeps at least one admin' : null }, 'Remove');
    remove.addEventListener('click', async () => {
      const warning = you ? ' You are removing yourself: you will lose access to the project.' : '';
      const ok = await confirmDialog(
        `Remove ${who} from the project ${project}? They lose access to every bucket of the project.${warning}`,
        { confirmLabel: 'Remove member', title: 'Remove a member' });
      if (!ok) return;
      remove.disabled = true;
      try {
        await attempt(`remove ${who}`, () =>
          api('DELETE', `${apiPath(project)}/members/${kind}/${encodeURIComponent(name)}`));
      } catch (err) {
        notify(`${cap(who)} was not removed: ${describeError(err)}`, 'error');
        remove.disabled = false;
        return;
      }
      if (you) ctx.navigate('/console/projects');
      else {
        await reload();
        document.getElementById('members-title')?.focus();
      }
      notify(`${cap(who)} removed from ${project}.`, 'success');
    });
    actions = h('td', { class: 'actions-cell' }, h('div', { class: 'row-actions' }, remove));
  }
  return h('tr', { dataset: { member: `${kind}:${name}` } },
    h('th', { scope: 'row', 'data-label': 'Member' }, name, you ? h('span', { class: 'you' }, ' (you)') : null),
    h('td', { 'data-label': 'Kind' }, kind),
    h('td', { 'data-label': 'Role' }, roleCell),
    h('td', { 'data-label': 'Since' }, formatTime(g.created_at)),
    actions);
}

const cap = (s) => s.charAt(0).toUpperCase() + s.slice(1);

function addMemberForm(project, reload) {
  const kindUser = h('input', { type: 'radio', name: 'kind', value: 'user', checked: true, id: nextId('kind') });
  const kindGroup = h('input', { type: 'radio', name: 'kind', value: 'group', id: nextId('kind') });
  const who = h('input', { type: 'text', name: 'member', 'aria-required': 'true', autocomplete: 'off', spellcheck: 'false',
    maxlength: '128', placeholder: 'a user name or a group name' });
  const role = h('select', { name: 'role' }, ...ROLES.map(([v, label]) => h('option', { value: v, selected: v === 'read' }, label)));
  const submit = h('button', { type: 'submit', class: 'button primary' }, 'Add member');
  const problem = h('div', { class: 'form-problem', role: 'alert' });
  const form = h('form', { class: 'form-card add-member', 'aria-labelledby': 'add-member-title', novalidate: true },
    h('h2', { id: 'add-member-title' }, 'Add a member'),
    h('p', { class: 'help' }, 'Adding someone who is already a member changes their role.'),
    h('fieldset', { class: 'kind' },
      h('legend', {}, 'Member is a'),
      h('label', { class: 'radio' }, kindUser, ' user'),
      h('label', { class: 'radio' }, kindGroup, ' group')),
    h('div', { class: 'form-row' },
      field('Name', who),
      field('Role', role),
      h('div', { class: 'actions' }, submit)),
    problem);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    problem.textContent = '';
    const kind = kindGroup.checked ? 'group' : 'user';
    const name = who.value.trim();
    if (!MEMBER.test(name)) {
      problem.textContent = name
        ? `"${name}" is not a valid ${kind} name: letters, digits and . _ @ : - only, at most 128.`
        : `Give the ${kind}’s name.`;
      who.setAttribute('aria-invalid', 'true');
      who.focus();
      return;
    }
    who.removeAttribute('aria-invalid');
    submit.disabled = true;
    try {
      await attempt(`add ${kind} ${name}`, () => api('PUT', `${apiPath(project)}/members`, { [kind]: name, role: role.value }));
      notify(`${cap(kind)} ${name} is now a member of ${project} (${role.value}).`, 'success');
      who.value = '';
      await reload();
      who.focus();
    } catch (err) {
      problem.textContent = `${cap(kind)} ${name} was not added: ${describeError(err)}`;
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

function dangerZone(project, ctx) {
  const del = h('button', { type: 'button', class: 'button danger' }, 'Delete project');
  const problem = h('div', { class: 'form-problem', role: 'alert' });
  del.addEventListener('click', async () => {
    problem.textContent = '';
    const ok = await confirmDialog(
      `Delete the project ${project} and its buckets? Its buckets must be empty. This cannot be undone.`,
      { confirmLabel: 'Delete project', title: 'Delete a project' });
    if (!ok) return;
    del.disabled = true;
    try {
      await attempt(`delete the project ${project}`, () => api('DELETE', apiPath(project)));
      ctx.navigate('/console/projects');
      notify(`Project ${project} deleted.`, 'success');
    } catch (err) {
      problem.textContent = err instanceof ApiError && err.status === 409
        ? `The project was not deleted: its buckets must be empty first. Delete their objects, then try again.`
        : `The project was not deleted: ${describeError(err)}`;
      del.disabled = false;
    }
  });
  return h('section', { class: 'form-card danger-zone', 'aria-labelledby': 'danger-title' },
    h('h2', { id: 'danger-title' }, 'Delete the project'),
    h('p', {}, 'Deleting a project deletes its buckets, which must be empty.'),
    del, problem);
}
