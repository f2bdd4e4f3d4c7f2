// The page in the LMS frame that offers the tool in a new window (the frame keeps no cookie and the platform offers
// no storage). The new window signs in first-party; a deep linking answer made there comes back here (hand_back.js),
// and this page posts it to the platform from inside the frame, so the LMS page that asked gets it.
const link = document.getElementById("lti-new-window");
const SUBJECT = "tutor.deep_link_response";
let opened = null;

link.addEventListener("click", (event) => {
  event.preventDefault();
  opened = window.open(link.href, "_blank");  // keeps window.opener: the answer comes back to this frame
  if (!opened) window.location.href = link.href;
});

window.addEventListener("message", (event) => {
  const data = event.data;
  if (event.origin !== window.location.origin || !opened || event.source !== opened) return;
  if (!data || data.subject !== SUBJECT || typeof data.jwt !== "string" || typeof data.return_url !== "string") return;
  if (!/^https?:\/\//.test(data.return_url)) return;
  document.getElementById("lti-new-window-done").hidden = false;
  const form = document.createElement("form");
  form.method = "post";
  form.action = data.return_url;
  const field = document.createElement("input");
  field.type = "hidden"; field.name = "JWT"; field.value = data.jwt;
  form.append(field);
  document.body.append(form);
  event.source.postMessage({subject: SUBJECT + ".received"}, window.location.origin);
  form.submit();
});
