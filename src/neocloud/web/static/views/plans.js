// Placeholder while the view is written (docs/console.md).
import { h } from "../lib/ui.js";

export async function render(root) {
  root.append(h("h1", {}, "plans"), h("p", { class: "muted" }, "Coming soon."));
}
