// The chat page's SSE reader (tutor/static/tutor/sse.js): events split anywhere, comments, CRLF, a broken stream.
import assert from "node:assert/strict";
import {test} from "node:test";

import {EventParser, readEvents} from "../../tutor/static/tutor/sse.js";

function responseOf(pieces, {breakAfter = null} = {}) {
  const encoder = new TextEncoder();
  let sent = 0;
  const body = new ReadableStream({
    pull(controller) {
      if (breakAfter !== null && sent === breakAfter) { controller.error(new TypeError("network error")); return; }
      if (sent === pieces.length) { controller.close(); return; }
      controller.enqueue(encoder.encode(pieces[sent++]));
    },
  });
  return new Response(body, {headers: {"Content-Type": "text/event-stream"}});
}

test("a whole stream gives each event with its JSON data, in order", async () => {
  const seen = [];
  await readEvents(responseOf([
    'event: accepted\ndata: {"answer_id": 7}\n\n',
    'event: delta\ndata: {"text": "Der "}\n\nevent: delta\ndata: {"text": "Init"}\n\n',
    'event: final\ndata: {"id": 7, "status": "done"}\n\n',
  ]), (name, data) => seen.push([name, data]));
  assert.deepEqual(seen, [["accepted", {answer_id: 7}], ["delta", {text: "Der "}], ["delta", {text: "Init"}],
                          ["final", {id: 7, status: "done"}]]);
});

test("events split across pieces anywhere, even inside a multi-byte character, come out whole", async () => {
  const whole = 'event: delta\ndata: {"text": "Prozessnummer für PID 1 – erste"}\n\n';
  const bytes = new TextEncoder().encode(whole);
  const pieces = [];
  for (let i = 0; i < bytes.length; i += 3) pieces.push(bytes.slice(i, i + 3));
  const body = new ReadableStream({
    start(controller) { for (const p of pieces) controller.enqueue(p); controller.close(); },
  });
  const seen = [];
  await readEvents(new Response(body), (name, data) => seen.push([name, data]));
  assert.deepEqual(seen, [["delta", {text: "Prozessnummer für PID 1 – erste"}]]);
});

test("keepalive comments and CRLF line ends are understood", () => {
  const parser = new EventParser();
  assert.deepEqual(parser.push(": keepalive\n\n"), []);
  assert.deepEqual(parser.push('event: snapshot\r\ndata: {"text": ""}\r\n\r\n'), [{name: "snapshot", data: {text: ""}}]);
  assert.deepEqual(parser.push('data: {"x": 1}'), []);  // not ended yet
  assert.deepEqual(parser.push("\n\n"), [{name: "message", data: {x: 1}}]);
});

test("a broken connection rejects after the events that did arrive", async () => {
  const seen = [];
  await assert.rejects(readEvents(responseOf(['event: accepted\ndata: {"answer_id": 3}\n\n', "event: del"],
                                             {breakAfter: 2}), (name) => seen.push(name)), TypeError);
  assert.deepEqual(seen, ["accepted"]);
});
