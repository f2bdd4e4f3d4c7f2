// The chat page's state machines (tutor/static/tutor/chat_state.js): an answer's text, a question's response.
import assert from "node:assert/strict";
import {test} from "node:test";

import {answerState, questionFlow} from "../../tutor/static/tutor/chat_state.js";

test("an answer shows its snapshot, then each piece, then its final message", () => {
  const answer = answerState();
  assert.deepEqual(answer.event("snapshot", {text: "Der "}), {text: "Der "});
  assert.deepEqual(answer.event("delta", {text: "Init-Prozess"}), {text: "Der Init-Prozess"});
  const final = {id: 4, status: "done", html: "<p>Der Init-Prozess</p>"};
  assert.deepEqual(answer.event("final", final), {final});
  assert.ok(answer.ended);
  assert.deepEqual(answer.event("delta", {text: " zu spät"}), {ignored: true});
  assert.equal(answer.text, "Der Init-Prozess");
});

test("an answer's quotes come first and stay while its text streams and starts over", () => {
  const answer = answerState();
  const quotes = [{text: "Er hat die Prozessnummer 1 (PID 1).", chunk: 3, start: 80, end: 115}];
  assert.deepEqual(answer.event("quotes", {quotes}), {quotes});
  assert.deepEqual(answer.event("snapshot", {text: ""}), {text: ""});
  assert.deepEqual(answer.event("delta", {text: "Die PID 1"}), {text: "Die PID 1"});
  assert.deepEqual(answer.quotes, quotes);
});

test("an answer that starts over (reset) shows the new text only", () => {
  const answer = answerState();
  answer.event("delta", {text: "Halb fertig"});
  assert.deepEqual(answer.event("snapshot", {text: ""}), {text: ""});
  assert.deepEqual(answer.event("delta", {text: "Neu"}), {text: "Neu"});
});

test("a question's response: accepted, the answer's events, done", () => {
  const flow = questionFlow();
  const accepted = {answer_id: 9, conversation_id: 2, question: {id: 8, role: "user"}};
  assert.deepEqual(flow.event("accepted", accepted), {accepted});
  assert.equal(flow.answerId, 9);
  assert.deepEqual(flow.event("delta", {text: "PID 1"}), {text: "PID 1"});
  flow.event("final", {id: 9, status: "done"});
  assert.equal(flow.end(), "done");
});

test("a response cut after the question was accepted resumes on the answer's own stream", () => {
  const flow = questionFlow();
  flow.event("accepted", {answer_id: 5});
  flow.event("delta", {text: "Der "});
  assert.equal(flow.end(), "resume");
});

test("a response that never accepted the question is a lost connection; stray events are ignored", () => {
  const flow = questionFlow();
  assert.deepEqual(flow.event("delta", {text: "?"}), {ignored: true});
  assert.equal(flow.end(), "lost");
  assert.equal(flow.answerId, null);
});

test("an answer waiting for the model says how many are ahead, until its turn and its first piece", () => {
  const answer = answerState();
  assert.deepEqual(answer.event("snapshot", {text: ""}), {text: ""});
  assert.deepEqual(answer.event("queue", {ahead: 3}), {waiting: 3});
  assert.deepEqual(answer.event("queue", {ahead: 1}), {waiting: 1});
  assert.deepEqual(answer.event("queue", {ahead: 0}), {waiting: 0});
  assert.deepEqual(answer.event("delta", {text: "Init"}), {text: "Init"});
  assert.deepEqual(answer.event("queue", {ahead: 0}), {ignored: true});  // text shown: nothing to say
});
