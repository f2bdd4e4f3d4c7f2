// The registration page: the LMS closes its registration dialog when the admin clicks Close (after reading
// the page), by the LTI Dynamic Registration message org.imsglobal.lti.close.
(function () {
  'use strict';
  var button = document.getElementById('close');
  if (!button) { return; }
  button.addEventListener('click', function () {
    var platform = window.opener || (window.parent !== window ? window.parent : null);
    if (platform) {
      platform.postMessage({subject: 'org.imsglobal.lti.close'}, '*');
    } else {
      window.close();
    }
  });
})();
