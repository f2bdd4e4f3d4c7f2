/* Every page: the language menu submits itself when a language is chosen. */
for (const select of document.querySelectorAll("form.lang select")) {
  select.addEventListener("change", () => select.form.submit());
}
