// Pages that pass a signed message on (the test platform's id_token, the tool's deep linking answer): their form
// submits itself; without JavaScript the person presses Continue.
for (const form of document.querySelectorAll("form[data-autopost]")) form.submit();
