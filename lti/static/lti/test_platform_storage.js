// Platform storage (1EdTech lti-pm-s): values are kept per tool origin, in this frame's memory, for as long as
// the course page is open. Only the tool's origin may put or get; answers go back to that origin only.
var toolOrigins = JSON.parse(document.getElementById("lti-tool-origins").textContent);
var stored = {};
window.addEventListener("message", function (event) {
  var data = event.data;
  if (!data || typeof data !== "object" || typeof data.subject !== "string" || !data.subject.startsWith("lti.")) { return; }
  if (toolOrigins.indexOf(event.origin) < 0) {
    console.warn("lti storage: ignored " + data.subject + " from " + event.origin);
    return;
  }
  var bucket = stored[event.origin] = stored[event.origin] || {};
  var answer = {subject: data.subject + ".response", message_id: data.message_id};
  if (typeof data.message_id !== "string" || !data.message_id) {
    answer.error = {code: "bad_request", message: "message_id is missing"};
  } else if (data.subject === "lti.put_data" && typeof data.key === "string" && typeof data.value === "string") {
    bucket[data.key] = data.value;
    answer.key = data.key;
    answer.value = data.value;
  } else if (data.subject === "lti.get_data" && typeof data.key === "string") {
    answer.key = data.key;
    if (Object.prototype.hasOwnProperty.call(bucket, data.key)) { answer.value = bucket[data.key]; }
    else { answer.error = {code: "bad_request", message: "no value stored for this key"}; }
  } else if (data.subject === "lti.put_data" || data.subject === "lti.get_data") {
    answer.error = {code: "bad_request", message: "key and value must be strings"};
  } else {
    answer.error = {code: "unsupported_subject", message: "unsupported subject " + data.subject};
  }
  event.source.postMessage(answer, event.origin);
});
