/* Finding sections by their heading: every word typed must occur in the section's path (case and accents
ignored), so "paket apt" finds "Paketverwaltung mit APT". */

export function fold(text) {
  return (text || "").normalize("NFD").replace(/[\u0300-\u036f]/g, "").toLowerCase();
}

export function filterSections(items, query) {
  const words = fold(query).split(/\s+/).filter(Boolean);
  if (!words.length) return items;
  return items.filter((item) => {
    const text = fold(item.text);
    return words.every((word) => text.includes(word));
  });
}
