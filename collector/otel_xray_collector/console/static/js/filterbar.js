// The filter-expression box shared by Traces and Analytics. It submits the expression as-is to
// GetTraceSummaries; the server is the only parser, and its InvalidRequestException message is
// shown inline under the box.

import { el } from "./dom.js";

const EXAMPLES = [
  'service("front")',
  'service("front") { fault }',
  'edge("front", "back")',
  "http.status >= 500",
  'http.url CONTAINS "/checkout"',
  "responsetime > 1",
  'annotation.tenant = "acme"',
  'user = "alice"',
];

export class FilterBar {
  constructor({ value = "", onSubmit, id = "filter" }) {
    this.onSubmit = onSubmit;
    const listId = `${id}-examples`;
    this.input = el("input", {
      id: `${id}-input`, type: "search", class: "filter-input", value, spellcheck: "false", autocomplete: "off",
      placeholder: 'e.g. service("front") AND http.status >= 500', list: listId,
      "aria-describedby": `${id}-error ${id}-help`, "data-testid": "filter-input",
    });
    this.error = el("p", { id: `${id}-error`, class: "filter-error", role: "alert", hidden: true, "data-testid": "filter-error" });
    this.help = el("p", { id: `${id}-help`, class: "filter-help" }, "Filter expressions as in GetTraceSummaries: ",
      el("code", {}, 'service("name")'), ", ", el("code", {}, 'edge("a", "b")'), ", ", el("code", {}, "http.status = 500"), ", ",
      el("code", {}, "annotation.key = value"), ", combined with AND, OR, ! and parentheses.");
    this.node = el("form", {
      class: "filter-bar", role: "search", "aria-label": "Filter traces",
      onsubmit: (event) => {
        event.preventDefault();
        this.onSubmit(this.input.value.trim());
      },
    },
    el("label", { for: `${id}-input`, class: "filter-label" }, "Filter expression"),
    el("div", { class: "filter-row" },
      this.input,
      el("button", { type: "submit", class: "button primary", "data-testid": "filter-apply" }, "Apply"),
      el("button", {
        type: "button", class: "button", onclick: () => {
          this.input.value = "";
          this.onSubmit("");
        },
      }, "Clear")),
    el("datalist", { id: listId }, EXAMPLES.map((e) => el("option", { value: e }))),
    this.error, this.help);
  }

  set value(value) {
    if (document.activeElement !== this.input) this.input.value = value || "";
  }

  showError(message) {
    this.error.textContent = message || "";
    this.error.hidden = !message;
    this.input.setAttribute("aria-invalid", message ? "true" : "false");
  }
}
