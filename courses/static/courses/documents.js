/* The documents page: a delete asks first; progress of documents being indexed is polled until they are done. */
for (const form of document.querySelectorAll("form[data-confirm]")) {
  form.addEventListener("submit", (event) => { if (!window.confirm(form.dataset.confirm)) event.preventDefault(); });
}

const table = document.getElementById("documents");
async function poll() {
  let busy = false;
  try {
    const response = await fetch(table.dataset.statusUrl, {credentials: "same-origin"});
    const data = await response.json();
    for (const d of data.documents) {
      const row = table.querySelector(`tr[data-id="${d.id}"]`);
      if (!row) continue;
      row.querySelector(".status-label").textContent = d.status_label;
      const bar = row.querySelector("progress");
      bar.value = d.percent; bar.hidden = d.status === "ready" || d.status === "failed";
      let counts = d.pages_total ? `${d.pages_done}/${d.pages_total} ${table.dataset.pagesLabel}` : "";
      if (d.chunks_total) counts += ` · ${d.chunks_done}/${d.chunks_total} ${table.dataset.passagesLabel}`;
      row.querySelector(".counts").textContent = counts;
      const error = row.querySelector(".error");
      error.textContent = d.error; error.hidden = d.status !== "failed";
      if (d.status !== "ready" && d.status !== "failed") busy = true;
    }
  } catch (e) { busy = true; }
  if (busy) setTimeout(poll, 1500);
}
if (table) poll();
