/* Every page: the language menu submits itself when a language is chosen; a form with data-confirm asks first.
   And the session, where an LMS frame keeps no cookie for the tool (courses/access.py): the page's own calls send
   it in a header, a form posted from the page in a field, and a link followed gets a single-use ticket first;
   the session itself never goes into a URL. Page data: the tutor-session json_script ({% session_config %}). */
const S = JSON.parse((document.getElementById("tutor-session") || {}).textContent || "{}");
const STORE = "tutor-session";
const RENEW_BEFORE_MS = 60 * 60 * 1000;  // renew while the person works, in the session's last hour

function stored() { try { return sessionStorage.getItem(STORE) || ""; } catch (e) { return ""; } }
function keep(value) {
  try { if (value) sessionStorage.setItem(STORE, value); else sessionStorage.removeItem(STORE); } catch (e) { /* none */ }
}
if (S.via === "cookie") keep("");  // the browser brings the cookie: nothing to carry
else if (S.session) keep(S.session);  // for a reload (where the browser allows the frame any storage)
const carried = () => (S.via === "cookie" ? "" : S.session || stored());
const sameOrigin = (url) => new URL(url, location.href).origin === location.origin;

// the ticket in the address bar is spent: keep it out of history and bookmarks
if (S.ticket_field && new URL(location.href).searchParams.has(S.ticket_field)) {
  const here = new URL(location.href);
  here.searchParams.delete(S.ticket_field);
  history.replaceState(history.state, "", here.pathname + here.search + here.hash);
}

// the page's own calls: the CSRF token always, the session where no cookie carries it
const nativeFetch = window.fetch.bind(window);
window.fetch = (input, init = {}) => {
  const url = typeof input === "string" || input instanceof URL ? String(input) : input.url;
  if (!sameOrigin(url)) return nativeFetch(input, init);
  const headers = new Headers(init.headers || (typeof input === "object" && input.headers) || undefined);
  if (S.csrf && !headers.has("X-CSRFToken")) headers.set("X-CSRFToken", S.csrf);
  const key = carried();
  if (key && S.header) headers.set(S.header, key);
  return nativeFetch(input, {...init, headers, credentials: init.credentials || "same-origin"});
};

async function ticketed(href) {
  const url = new URL(href, location.href);
  if (!carried() || !sameOrigin(url)) return url.href;
  const response = await fetch(S.ticket_url, {method: "POST"});
  if (response.ok) url.searchParams.set(S.ticket_field, (await response.json()).ticket);
  return url.href;
}
async function navigate(href) { location.href = await ticketed(href); }
function reload() { if (carried()) navigate(location.href); else location.reload(); }
window.tutor = {navigate, reload};

document.addEventListener("click", (event) => {
  if (!carried() || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey
      || event.altKey) return;
  const link = event.target.closest("a[href]");
  if (!link || !sameOrigin(link.href) || link.getAttribute("href").startsWith("#")) return;
  event.preventDefault();
  if (link.target === "_blank") {  // a window of its own: opened now (no popup blocker), addressed once ticketed
    const opened = window.open("about:blank", "_blank");
    ticketed(link.href).then((href) => { if (opened) { opened.opener = null; opened.location.href = href; } });
  } else {
    navigate(link.href);
  }
});

document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!carried() || event.defaultPrevented || !sameOrigin(form.action)) return;
  if (form.method.toLowerCase() === "post") {
    let field = form.elements.namedItem(S.field);
    if (!field) {
      field = document.createElement("input");
      field.type = "hidden"; field.name = S.field;
      form.append(field);
    }
    field.value = carried();
  } else {  // a GET form: its address gets a ticket, never the session
    event.preventDefault();
    const url = new URL(form.action, location.href);
    url.search = new URLSearchParams(new FormData(form)).toString();
    navigate(url.href);
  }
});

// a page refused for want of a session (reloaded, or opened again) tries once more with the session it kept
if (S.refused && carried()) {
  const tried = "tutor-retried:" + location.pathname + location.search;
  try {
    if (!sessionStorage.getItem(tried)) { sessionStorage.setItem(tried, "1"); navigate(location.href); }
  } catch (e) { /* no storage: nothing to retry with */ }
} else {
  try {
    for (const key of Object.keys(sessionStorage)) if (key.startsWith("tutor-retried:")) sessionStorage.removeItem(key);
  } catch (e) { /* none */ }
}

// the explicit renewal: while the person works (not while a page merely polls), in the session's last hour
let renewing = false;
async function renew() {
  if (renewing || !S.expires || !S.renew_url || new Date(S.expires) - Date.now() > RENEW_BEFORE_MS) return;
  renewing = true;
  try {
    const response = await fetch(S.renew_url, {method: "POST"});
    if (response.ok) S.expires = (await response.json()).expires;
  } finally { renewing = false; }
}
for (const name of ["keydown", "pointerdown"]) document.addEventListener(name, renew, {passive: true});

for (const select of document.querySelectorAll("form.lang select")) {
  select.addEventListener("change", () => select.form.requestSubmit());
}
for (const form of document.querySelectorAll("form[data-confirm]")) {
  form.addEventListener("submit", (event) => { if (!window.confirm(form.dataset.confirm)) event.preventDefault(); });
}
