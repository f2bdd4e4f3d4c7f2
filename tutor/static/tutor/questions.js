/* The Questions page's section tree: find sections by their heading, tick a whole document or chapter (its
sections follow), and see how many sections are chosen. Without JavaScript the tree still works: a ticked document
or chapter is expanded to its sections by the server. */
import {filterSections} from "./section_tree.js";

const tree = document.getElementById("section-tree");
const search = document.getElementById("section-search");
const count = document.getElementById("chosen-count");

function update() {
  const chosen = tree.querySelectorAll('input[name="section"]:checked').length;
  count.textContent = chosen ? count.dataset.some.replace("{n}", chosen) : count.dataset.none;
}

if (tree) {
  tree.addEventListener("change", (event) => {
    const box = event.target;
    if (box.classList.contains("pick-all")) {
      box.parentElement.querySelectorAll('input[type="checkbox"]').forEach((inner) => { inner.checked = box.checked; });
    }
    update();
  });
  search.addEventListener("input", () => {
    const items = [...tree.querySelectorAll("li.section")].map((li) => ({text: li.dataset.search, element: li}));
    const shown = new Set(filterSections(items, search.value).map((item) => item.element));
    for (const item of items) item.element.hidden = !shown.has(item.element);
    for (const details of tree.querySelectorAll("details")) {
      const visible = [...details.querySelectorAll("li.section")].some((li) => !li.hidden);
      if (search.value.trim()) details.open = visible;
      details.closest("li").hidden = !visible;
    }
  });
  update();
}
