/* The review page of a question set: while the questions are generated, the set's state is polled from the API
(GET /api/v1/courses/{course}/question-sets/{set}/, the page's launch token in the URL); the page reloads when the
generation has ended. */
const box = document.getElementById("generation");

async function poll() {
  try {
    const data = await (await fetch(box.dataset.statusUrl, {credentials: "same-origin"})).json();
    box.querySelector(".label").textContent = data.generation_label;
    if (data.generation === "done" || data.generation === "failed") { window.location.reload(); return; }
  } catch (e) { /* try again below */ }
  setTimeout(poll, 2000);
}
if (["queued", "running"].includes(box.dataset.state)) setTimeout(poll, 2000);
