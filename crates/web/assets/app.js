// Daicho's only script: small conveniences over pages that work without it.
// - A field form shows only the settings that apply to the chosen type; the others are hidden
//   and disabled, so that a value typed before the type changed is not sent.
// - The grid's selection column gets a "select every record on this page" box.
// - On a narrow screen the grid's "sort and filter" panel starts folded when it holds nothing,
//   so that the records come first (without the script it stays open).
"use strict";

function applyKind(form) {
  const kind = form.querySelector("select[name=kind]");
  if (!kind) return;
  for (const group of form.querySelectorAll("[data-kinds]")) {
    const on = group.dataset.kinds.split(" ").includes(kind.value);
    group.hidden = !on;
    for (const input of group.querySelectorAll("input, select, textarea")) input.disabled = !on;
  }
}

function wireSelectAll(box) {
  const rows = () => document.querySelectorAll("input[type=checkbox][form=bulk][name=id]");
  const sync = () => {
    const all = Array.from(rows());
    const checked = all.filter((r) => r.checked).length;
    box.checked = all.length > 0 && checked === all.length;
    box.indeterminate = checked > 0 && checked < all.length;
  };
  box.hidden = false;
  box.addEventListener("change", () => {
    for (const r of rows()) r.checked = box.checked;
    sync();
  });
  for (const r of rows()) r.addEventListener("change", sync);
  sync();
}

document.addEventListener("DOMContentLoaded", () => {
  for (const form of document.querySelectorAll("form[data-field-form]")) {
    applyKind(form);
    form.querySelector("select[name=kind]")?.addEventListener("change", () => applyKind(form));
  }
  for (const box of document.querySelectorAll("input[data-select-all]")) wireSelectAll(box);
  if (window.matchMedia("(max-width: 640px)").matches) {
    for (const panel of document.querySelectorAll("details[data-fold-narrow]")) panel.open = false;
  }
});
