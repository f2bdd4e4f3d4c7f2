/* The review page of a question set: while questions are generated or a part of one is rewritten by the model, the
set's state is polled from the API (GET /api/v1/courses/{course}/question-sets/{set}/, the session in its header
where needed: static/base/base.js) and the page reloads when it has ended; "Select all" ticks every question for the bulk review. */
const box = document.getElementById("generation");

async function poll() {
  try {
    const data = await (await fetch(box.dataset.statusUrl, {credentials: "same-origin"})).json();
    box.querySelector(".label").textContent = data.generation_label;
    const busy = data.generation === "queued" || data.generation === "running" || data.revising > 0;
    if (!busy) { window.tutor.reload(); return; }
  } catch (e) { /* try again below */ }
  setTimeout(poll, 2000);
}
// a set that was never generated (imported, written by hand) has no generation to follow, unless the model rewrites
if (box && (["queued", "running"].includes(box.dataset.state) || box.dataset.revising)) setTimeout(poll, 2000);

const all = document.getElementById("select-all");
if (all) {
  all.addEventListener("change", () => {
    document.querySelectorAll("input.pick").forEach((pick) => { pick.checked = all.checked; });
  });
}
