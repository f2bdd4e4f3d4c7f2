// The chat page: the conversation so far, asking (the answer streams in the question's own response), following
// an answer on its own stream (resume, retry, an answer still running when the page opened), sources, feedback.
// Page data comes from json_script elements: tutor-client (URLs, texts) and tutor-history. Every call is a fetch,
// which static/base/base.js gives the CSRF token and, where the frame keeps no cookie, the session header.
import {answerState, questionFlow} from "./chat_state.js";
import {readEvents} from "./sse.js";

const cfg = JSON.parse(document.getElementById("tutor-client").textContent);
const history = JSON.parse(document.getElementById("tutor-history").textContent);
const log = document.getElementById("log");
const form = document.getElementById("ask-form");
const input = document.getElementById("question");
const errorBox = document.getElementById("ask-error");
const T = cfg.text;
const forMessage = (url, id) => url.replace("/m/0/", "/m/" + id + "/");

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

function showError(text) {
  errorBox.textContent = text;
  errorBox.hidden = false;
}

function post(url, fields) {
  const body = new FormData();
  for (const [name, value] of Object.entries(fields)) body.append(name, value);
  return fetch(url, {method: "POST", body: body, credentials: "same-origin"});
}

function feedbackBar(id) {
  const bar = el("div", "feedback");
  const up = el("button", "secondary up", "+ " + T.helpful), down = el("button", "secondary down", "− " + T.unhelpful);
  up.type = down.type = "button";
  const comment = el("input"); comment.type = "text"; comment.placeholder = T.comment; comment.hidden = true;
  comment.setAttribute("aria-label", T.comment);
  const send = el("button", "secondary", T.send); send.type = "button"; send.hidden = true;
  let rating = null;
  async function rate(done) {
    const response = await post(forMessage(cfg.feedback_url, id), {rating: rating, comment: comment.value});
    if (response.ok && done) bar.replaceChildren(el("span", "muted", T.thanks));
  }
  function choose(value) {
    rating = value; comment.hidden = false; send.hidden = false;
    up.classList.toggle("chosen", value === "up"); down.classList.toggle("chosen", value === "down");
    rate(false);
  }
  up.addEventListener("click", () => choose("up"));
  down.addEventListener("click", () => choose("down"));
  send.addEventListener("click", () => rate(true));
  bar.append(up, down, comment, send);
  return bar;
}

// The tool's quotes from the course texts, which open an answer: each a blockquote with a link to its passage in
// the reader view (the sentence highlighted there).
function quotesBlock(quotes) {
  const block = el("section", "quotes");
  block.setAttribute("aria-label", T.quoted);
  block.append(el("strong", "", T.quoted));
  for (const q of quotes) {
    const figure = el("figure", "quote");
    figure.append(el("blockquote", "", q.text));
    const caption = el("figcaption", "muted");
    const link = el("a", "", q.title + (q.section ? " › " + q.section : "") + (q.page ? ", " + T.page + " " + q.page : ""));
    link.href = q.url;
    caption.append("— ", link);
    figure.append(caption);
    block.append(figure);
  }
  return block;
}

function render(p) {
  const box = el("div", "msg " + p.role + (p.status === "failed" ? " failed" : ""));
  box.dataset.id = p.id;
  if (p.quotes && p.quotes.length) box.append(quotesBlock(p.quotes));
  const body = el("div", "body");
  body.innerHTML = p.html;  // sanitized on the server (no raw HTML, no images, http(s) links only)
  box.append(body);
  if (p.status === "failed") box.append(el("div", "error-box", p.error || T.failed));
  if (p.citations && p.citations.length) {
    box.append(el("strong", "", T.sources));
    const list = el("ol", "sources");
    for (const c of p.citations) {
      const item = el("li", c.cited ? "cited" : "uncited");
      item.value = c.number;
      const link = el("a", "", c.title + (c.section ? " › " + c.section : "") + (c.page ? ", " + T.page + " " + c.page : ""));
      link.href = c.url;
      item.append(link); list.append(item);
    }
    box.append(list);
  }
  if (p.role === "assistant" && p.status === "done" && !p.declined) box.append(feedbackBar(p.id));
  if (p.role === "assistant" && p.status === "failed") box.append(retryButton(p.id, box));
  return box;
}

function retryButton(id, box) {
  const button = el("button", "secondary retry", T.retry); button.type = "button";
  button.addEventListener("click", async () => {
    button.disabled = true; errorBox.hidden = true;
    try {
      const response = await post(forMessage(cfg.retry_url, id), {});
      const data = await response.json();
      if (!response.ok) { showError(data.error); button.disabled = false; return; }
      const fresh = el("div", "msg assistant"); fresh.dataset.id = id;
      box.replaceWith(fresh);
      follow(id, fresh);
    } catch (err) {
      showError(T.network); button.disabled = false;
    }
  });
  return button;
}

// An answer's box, fed by its events (see answerState): the text so far while it streams, as the server rendered it
// (the same sanitized Markdown as the finished message; plain text until the first rendering), the rendered
// message at the end.
function answerView(box) {
  const body = box.querySelector(".body") || box.appendChild(el("div", "body"));
  body.className = "body streaming"; body.textContent = T.thinking;
  const state = answerState();
  return {
    state,
    event(name, data) {
      const shown = state.event(name, data);
      if (shown.final) { box.replaceWith(render(shown.final)); return true; }
      if (shown.quotes) {  // shown at once, before the model's text
        box.querySelector(".quotes")?.remove();
        if (shown.quotes.length) box.insertBefore(quotesBlock(shown.quotes), body);
        return false;
      }
      if (shown.waiting !== undefined) {  // its turn at the model comes after the requests ahead of it
        body.textContent = shown.waiting > 0 ? T.waiting.replace("%(count)s", shown.waiting) : T.thinking;
      }
      if (shown.html) body.innerHTML = shown.html;  // sanitized on the server, rendered as the final message is
      else if (shown.text !== undefined) body.textContent = shown.text || T.thinking;
      return false;
    },
    lost() { body.textContent = state.text + "\n" + T.network; },
  };
}

// Follow an answer on its own stream (an answer still running when the page opened, a retry, a resume).
// Read with fetch, not EventSource: EventSource sends no header, and the session must not go into its URL.
async function follow(id, box) {
  const view = answerView(box);
  let finished = false;
  try {
    const response = await fetch(forMessage(cfg.stream_url, id), {headers: {"Accept": "text/event-stream"}});
    if (response.ok) {
      await readEvents(response, (name, data) => { if (!finished && view.event(name, data)) finished = true; });
    }
  } catch (err) { /* the connection was lost */ }
  if (!finished) view.lost();
}

// The question's POST response (see questionFlow); a connection lost before the answer ended continues on the
// answer's own stream, from where it is.
async function answerFrom(response) {
  const flow = questionFlow();
  let view = null, box = null;
  try {
    await readEvents(response, (name, data) => {
      const shown = flow.event(name, data);
      if (shown.accepted) {
        document.getElementById("conversation").value = data.conversation_id;
        document.getElementById("new").value = "";
        log.append(render(data.question));
        box = el("div", "msg assistant"); box.dataset.id = data.answer_id;
        log.append(box);
        view = answerView(box);
        box.scrollIntoView({block: "end"});
      } else if (view) {
        view.event(name, data);
      }
    });
  } catch (err) { /* the connection was lost: resumed below */ }
  const next = flow.end();
  if (next === "resume") follow(flow.answerId, box);
  else if (next === "lost") showError(T.network);
}

for (const p of history) {
  const box = render(p);
  log.append(box);
  if (p.role === "assistant" && (p.status === "pending" || p.status === "streaming")) follow(p.id, box);
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const text = input.value.trim();
  if (!text) return;
  errorBox.hidden = true;
  const button = document.getElementById("ask");
  button.disabled = true;
  try {
    const response = await fetch(cfg.ask_url, {method: "POST", body: new FormData(form), credentials: "same-origin",
      headers: {"Accept": "text/event-stream"}});
    if (!response.ok) {
      const data = await response.json();
      showError(data.error); return;
    }
    input.value = "";
    answerFrom(response);  // not awaited: the question box is free again while the answer streams
  } catch (err) {
    showError(T.network);
  } finally {
    button.disabled = false;
  }
});
document.getElementById("new-conversation").addEventListener("click", () => {
  // The next question opens a new conversation; the old one stays under "Earlier conversations".
  document.getElementById("new").value = "1";
  document.getElementById("conversation").value = "";
  log.replaceChildren(log.querySelector(".welcome"));
  errorBox.hidden = true;
  input.focus();
});
input.addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); form.requestSubmit(); }
});
