/* A whole-text run: each section's state, made and dropped questions are polled from the API (GET
/api/v1/courses/{course}/generation-runs/{run}/, the session in its header where needed, static/base/base.js) and updated in place until every
section has finished. */
const box = document.getElementById("run");
const counts = document.getElementById("run-counts");
const progress = document.getElementById("run-progress");

async function poll() {
  try {
    const data = await (await fetch(box.dataset.statusUrl, {credentials: "same-origin"})).json();
    progress.max = data.sections;
    progress.value = data.done + data.failed;
    counts.textContent = counts.dataset.template.replace("{done}", data.done).replace("{failed}", data.failed)
      .replace("{total}", data.sections);
    for (const part of data.parts) {
      const row = document.querySelector(`tr[data-part="${part.id}"]`);
      if (!row) continue;
      row.querySelector(".state").textContent = part.error ? `${part.state_label}: ${part.error}` : part.state_label;
      row.querySelector(".made").textContent = `${part.made}/${part.requested}`;
      row.querySelector(".dropped").textContent = String(part.dropped);
    }
    if (data.finished) { window.tutor.reload(); return; }
  } catch (e) { /* try again below */ }
  setTimeout(poll, 3000);
}
if (!box.dataset.finished) setTimeout(poll, 3000);
