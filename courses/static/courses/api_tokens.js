/* The API tokens page: the new token's field selects itself for copying. (Revoking asks first: base.js.) */
const secret = document.querySelector("#new-token input");
if (secret) secret.addEventListener("focus", () => secret.select());
