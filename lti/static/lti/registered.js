// After dynamic registration: tell the platform's registration window that the tool is done (LTI Dynamic
// Registration: org.imsglobal.lti.close), at once and when Close is pressed.
function done() { (window.opener || window.parent).postMessage({subject: 'org.imsglobal.lti.close'}, '*'); }
document.getElementById("close").addEventListener("click", done);
done();
