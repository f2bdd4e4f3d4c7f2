/* Every page: the language menu submits itself when a language is chosen; a form with data-confirm asks first. */
for (const select of document.querySelectorAll("form.lang select")) {
  select.addEventListener("change", () => select.form.submit());
}
for (const form of document.querySelectorAll("form[data-confirm]")) {
  form.addEventListener("submit", (event) => { if (!window.confirm(form.dataset.confirm)) event.preventDefault(); });
}
