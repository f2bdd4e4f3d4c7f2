// LTI client-side postMessages / platform storage (1EdTech lti-cs-oidc, lti-pm-s): the tool side of the login
// (store state and nonce in the platform's storage frame, or find that cookies work) and of the launch (read them
// back and post them with the id_token). Page data: the lti-storage-config json_script.
var cfg = JSON.parse(document.getElementById("lti-storage-config").textContent);
var WAIT_MS = 5000, DISCOVER_MS = 1500;

function newId() {
  return window.crypto && crypto.randomUUID ? crypto.randomUUID() : String(Math.random()).slice(2) + Date.now();
}
function platformWindow() {
  var w = window.opener || window.parent;
  return w && w !== window ? w : null;
}
function frameNamed(name) {
  var base = platformWindow();
  if (!base) { return null; }
  if (!name || name === "_parent") { return base; }
  try { return base.frames[name] || null; } catch (e) { return null; }
}
/* One request/response exchange; the answer must come from the platform's origin with our message_id. */
function exchange(target, message, targetOrigin, acceptOrigin, ms) {
  return new Promise(function (resolve) {
    var id = newId(), timer = setTimeout(function () { finish(null); }, ms);
    function finish(value) { clearTimeout(timer); window.removeEventListener("message", listen); resolve(value); }
    function listen(event) {
      var data = event.data;
      if (!data || typeof data !== "object" || data.message_id !== id) { return; }
      if (data.subject !== message.subject + ".response" || !acceptOrigin(event)) { return; }
      finish(data.error ? null : data);
    }
    window.addEventListener("message", listen);
    message.message_id = id;
    try { target.postMessage(message, targetOrigin); } catch (e) { finish(null); }
  });
}
function fromPlatform(event) { return event.origin === cfg.platform_origin; }
/* lti.capabilities: which frame (if any) answers a subject; asked of the parent, whatever its origin. */
function discover(subject) {
  var parent = platformWindow();
  if (!parent) { return Promise.resolve(null); }
  return exchange(parent, {subject: "lti.capabilities"}, "*", function (event) {
    return event.source === parent;
  }, DISCOVER_MS).then(function (answer) {
    var found = ((answer && answer.supported_messages) || []).filter(function (m) { return m.subject === subject; });
    return found.length ? (found[0].frame || "_parent") : null;
  });
}
function put(frame, key, value) {
  return exchange(frame, {subject: "lti.put_data", key: key, value: value}, cfg.platform_origin, fromPlatform,
                  WAIT_MS).then(function (answer) { return !!answer && answer.value === value; });
}
function get(frame, key) {
  return exchange(frame, {subject: "lti.get_data", key: key}, cfg.platform_origin, fromPlatform,
                  WAIT_MS).then(function (answer) { return answer && typeof answer.value === "string" ? answer.value : ""; });
}
/* Whether this frame keeps a cookie such as the state cookie: partitioned (CHIPS) where the tool sets it so. */
function cookiesWork() {
  var probe = "lti1p3-probe=" + newId().slice(0, 8);
  var attributes = "; path=/; SameSite=None" + (cfg.secure ? "; Secure" : "") + (cfg.partitioned ? "; Partitioned" : "");
  document.cookie = probe + attributes;
  var kept = document.cookie.indexOf(probe) >= 0;
  document.cookie = "lti1p3-probe=; max-age=0" + attributes;
  return kept;
}

async function login() {
  if (cfg.probe_cookies) {
    if (cookiesWork()) { window.location.replace(cfg.auth_url); return; }
    var name = await discover("lti.put_data");  /* cookies are blocked: does the platform offer storage? */
    window.location.replace(name ? cfg.login_url + "&lti_storage_target=" + encodeURIComponent(name) : cfg.blocked_url);
    return;
  }
  var frame = frameNamed(cfg.target);
  var stored = !!frame && await put(frame, "state_" + cfg.state, cfg.state) &&
               await put(frame, "nonce_" + cfg.nonce, cfg.nonce);
  window.location.replace(stored ? cfg.auth_url : cfg.blocked_url);
}

async function launch() {
  var frame = frameNamed(cfg.target);
  if (!frame) { frame = frameNamed(await discover("lti.get_data")); }
  var form = document.getElementById("lti-storage-launch");
  if (frame) {
    form.elements.lti_storage_state.value = await get(frame, "state_" + cfg.state);
    form.elements.lti_storage_nonce.value = await get(frame, "nonce_" + cfg.nonce);
  }
  form.submit();  /* the server compares both values with the launch, and refuses a mismatch */
}

(cfg.mode === "login" ? login : launch)();
