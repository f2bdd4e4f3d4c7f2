// Server-sent events read from a fetch response: the chat page's question is a POST whose response streams the
// answer, which EventSource (GET only) cannot read. The parser is separate from the reading, so it is tested
// without a network (tests/js/sse.test.js).

// Splits a stream of text into events: push() takes the next piece (it may end anywhere, even inside a
// line) and returns the events it completed, as {name, data} with data parsed from JSON.
export class EventParser {
  constructor() {
    this.pending = "";
  }

  push(text) {
    this.pending += text.replace(/\r\n?/g, "\n");
    const events = [];
    let cut;
    while ((cut = this.pending.indexOf("\n\n")) >= 0) {
      const block = this.pending.slice(0, cut);
      this.pending = this.pending.slice(cut + 2);
      let name = "message", data = "";
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("data:")) data += line.slice(5).trim();
      }
      if (data) events.push({name, data: JSON.parse(data)});  // comments (": keepalive") carry no data
    }
    return events;
  }
}

// Calls handle(name, data) for each event of a fetch Response's body until it ends (rejects when the
// connection breaks).
export async function readEvents(response, handle) {
  const reader = response.body.getReader(), decoder = new TextDecoder(), parser = new EventParser();
  for (;;) {
    const {value, done} = await reader.read();
    if (done) return;
    for (const event of parser.push(decoder.decode(value, {stream: true}))) handle(event.name, event.data);
  }
}
