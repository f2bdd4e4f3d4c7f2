// The chat page's state machines, without the DOM (tested by tests/js/chat_state.test.js).

// One answer's text as its events arrive: "quotes" (the sentences of the course texts the tool quotes first),
// "snapshot" (the text so far), "queue" (it waits for the model: how many requests are ahead; 0 when its turn
// came), "delta" (the next piece), "final" (the finished message). event() returns what to show: {quotes} when
// they arrive, {waiting: n} while it waits its turn, {text} while it streams, {final} once it has ended.
export function answerState() {
  let text = "", ended = false, quotes = [];
  return {
    event(name, data) {
      if (ended) return {ignored: true};
      if (name === "quotes") { quotes = data.quotes || []; return {quotes}; }
      if (name === "snapshot") text = data.text;
      else if (name === "queue") return text ? {ignored: true} : {waiting: data.ahead};
      else if (name === "delta") text += data.text;
      else if (name === "final") { ended = true; return {final: data}; }
      else return {ignored: true};
      return {text};
    },
    get text() { return text; },
    get quotes() { return quotes; },
    get ended() { return ended; },
  };
}

// A question's POST response: "accepted" (the question as shown, the answer's id), then the answer's events.
// event() says what the page does with each ({accepted}, or the answer's {text}/{final}); end() says what
// comes after the response ended: "done", "resume" (the answer goes on: follow its own stream) or "lost"
// (the question never arrived).
export function questionFlow() {
  let answer = null, accepted = null;
  return {
    event(name, data) {
      if (name === "accepted") {
        accepted = data;
        answer = answerState();
        return {accepted: data};
      }
      return answer ? answer.event(name, data) : {ignored: true};
    },
    end() {
      if (!accepted) return "lost";
      return answer.ended ? "done" : "resume";
    },
    get answerId() { return accepted ? accepted.answer_id : null; },
  };
}
