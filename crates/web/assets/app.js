// Daicho's only script: small conveniences over pages that work without it.
// - A field form shows only the settings that apply to the chosen type; the others are hidden
//   and disabled, so that a value typed before the type changed is not sent.
// - The grid's selection column gets a "select every record on this page" box.
// - The grid's bulk edit suggests the values a choice or checkbox field takes.
// - A grid filter row offers only the conditions its chosen field takes.
// - On a narrow screen the grid's "sort and filter" panel starts folded (its summary counts
//   what it holds), so that the records come first (without the script it stays open).
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

function wireFilterRow(row) {
  const field = row.querySelector("select[name=ff]");
  const op = row.querySelector("select[name=fo]");
  if (!field || !op) return;
  // (On load a condition the field does not take stays chosen, as the page's message names
  // it; choosing another field moves to one it takes.)
  const apply = (moved) => {
    const chosen = field.selectedOptions[0];
    const takes = chosen && chosen.dataset.ops ? chosen.dataset.ops.split(" ") : null;
    for (const o of op.options) {
      const on = !takes || takes.includes(o.value) || (!moved && o.selected);
      o.hidden = !on;
      o.disabled = !on;
    }
    if (moved && op.selectedOptions[0] && op.selectedOptions[0].disabled) {
      const first = Array.from(op.options).find((o) => !o.disabled);
      if (first) op.value = first.value;
    }
  };
  field.addEventListener("change", () => apply(true));
  apply(false);
}

function wireBulkValues(field) {
  const list = document.getElementById("bulk-values");
  if (!list) return;
  const apply = () => {
    const chosen = field.selectedOptions[0];
    const values = chosen && chosen.dataset.values ? chosen.dataset.values.split("\n") : [];
    list.replaceChildren(...values.filter((v) => v !== "").map((v) => new Option(v, v)));
  };
  field.addEventListener("change", apply);
  apply();
}

document.addEventListener("DOMContentLoaded", () => {
  for (const form of document.querySelectorAll("form[data-field-form]")) {
    applyKind(form);
    form.querySelector("select[name=kind]")?.addEventListener("change", () => applyKind(form));
  }
  for (const box of document.querySelectorAll("input[data-select-all]")) wireSelectAll(box);
  for (const row of document.querySelectorAll(".filter-row")) wireFilterRow(row);
  const bulkField = document.getElementById("bulk-field");
  if (bulkField) wireBulkValues(bulkField);
  if (window.matchMedia("(max-width: 640px)").matches) {
    for (const panel of document.querySelectorAll("details[data-fold-narrow]")) panel.open = false;
  }
});
