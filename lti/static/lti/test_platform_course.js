// The test platform's course page answers lti.capabilities from the tool (1EdTech client-side postMessages).
var cfg = JSON.parse(document.getElementById("lti-capabilities").textContent);
var tool = document.getElementById("lti-tool");
window.addEventListener("message", function (event) {
  var data = event.data;
  if (!data || typeof data !== "object" || data.subject !== "lti.capabilities") { return; }
  if (event.source !== tool.contentWindow || cfg.tool_origins.indexOf(event.origin) < 0) { return; }
  var supported = [{subject: "lti.capabilities"}];
  if (cfg.frame) {
    supported.push({subject: "lti.put_data", frame: cfg.frame}, {subject: "lti.get_data", frame: cfg.frame});
  }
  event.source.postMessage({subject: "lti.capabilities.response", message_id: data.message_id,
                            supported_messages: supported}, event.origin);
});
