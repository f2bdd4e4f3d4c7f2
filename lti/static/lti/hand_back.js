// The deep linking answer made in a window opened from the LMS frame (new_window.js): handed to that frame, which
// posts it to the platform, so the LMS page that asked gets it. Without the frame (closed, or the window opened
// otherwise) the answer is posted from here, as before.
const form = document.getElementById("lti-return");
const SUBJECT = "tutor.deep_link_response";
const frame = window.opener && !window.opener.closed ? window.opener : null;

if (frame) {
  const timer = setTimeout(() => form.submit(), 5000);  // nobody took it: post it from this window
  window.addEventListener("message", (event) => {
    if (event.origin !== window.location.origin || event.source !== frame) return;
    if (!event.data || event.data.subject !== SUBJECT + ".received") return;
    clearTimeout(timer);
    document.getElementById("lti-returning").hidden = true;
    document.getElementById("lti-handed-back").hidden = false;
    window.close();
  });
  frame.postMessage({subject: SUBJECT, jwt: form.elements.JWT.value, return_url: form.action},
                    window.location.origin);
} else {
  form.submit();
}
