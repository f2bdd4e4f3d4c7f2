// The Questions page's section search (tutor/static/tutor/section_tree.js).
import assert from "node:assert/strict";
import {test} from "node:test";

import {filterSections, fold} from "../../tutor/static/tutor/section_tree.js";

const sections = [
  {text: "3 die systeminitialisierung › 3.2 systemd-init"},
  {text: "2 debian-paketverwaltung › 2.2 grundlegende paketmanagement-operationen mit apt"},
  {text: "1 einführung in gnu/linux › 1.1 grundlagen für neulinge"},
];

test("every word typed must occur in the heading path", () => {
  assert.deepEqual(filterSections(sections, "paket apt"), [sections[1]]);
  assert.deepEqual(filterSections(sections, "systemd"), [sections[0]]);
  assert.deepEqual(filterSections(sections, "systemd apt"), []);
});

test("case and accents are ignored; an empty query shows everything", () => {
  assert.deepEqual(filterSections(sections, "EINFUHRUNG"), [sections[2]]);
  assert.equal(fold("Überblick"), "uberblick");
  assert.equal(filterSections(sections, "  ").length, 3);
});
