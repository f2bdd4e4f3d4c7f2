/* The documents page: progress of documents being indexed is polled from the API (GET
/api/v1/courses/{course}/documents/, the session in its header where the frame keeps no cookie (static/base/base.js), every page of the list) until they are done.
(A delete asks first: base.js.) */

const table = document.getElementById("documents");

async function allDocuments(url) {
  const documents = [];
  while (url) {
    const response = await fetch(url, {credentials: "same-origin", headers: {Accept: "application/json"}});
    if (!response.ok) throw new Error(`${response.status} ${url}`);
    const page = await response.json();
    documents.push(...page.results);
    url = page.next;
  }
  return documents;
}

async function poll() {
  let busy = false;
  try {
    for (const d of await allDocuments(table.dataset.statusUrl)) {
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
