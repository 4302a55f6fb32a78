// Tiny DOM helpers. Everything the console shows is built with these (never innerHTML with
// data), so trace content such as URLs or exception messages can never inject markup.

const SVG_NS = "http://www.w3.org/2000/svg";

function apply(node, attrs) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.setAttribute("class", value);
    else if (key === "text") node.textContent = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "style" && typeof value === "object") Object.assign(node.style, value);
    else if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  return node;
}

function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** el("div", {class: "x"}, child, "text", [more]) */
export function el(tag, attrs, ...children) {
  return append(apply(document.createElement(tag), attrs), children);
}

export function svg(tag, attrs, ...children) {
  return append(apply(document.createElementNS(SVG_NS, tag), attrs), children);
}

/** Replace a node's children in one go, so the page never shows (or scrolls to) a half state. */
export function replaceChildren(node, ...children) {
  const fragment = document.createDocumentFragment();
  append(fragment, children);
  node.replaceChildren(fragment);
  return node;
}

/** Keep the scroll offsets of `scroller` across a synchronous re-render. */
export function keepingScroll(scroller, render) {
  const top = scroller.scrollTop;
  const left = scroller.scrollLeft;
  const windowY = window.scrollY;
  render();
  scroller.scrollTop = top;
  scroller.scrollLeft = left;
  if (window.scrollY !== windowY) window.scrollTo(window.scrollX, windowY);
}

/** Arrow-key focus movement inside a list of focusable items (rows, tabs, options). */
export function rovingKeys(event, items, current, { vertical = true } = {}) {
  const index = items.indexOf(current);
  if (index < 0) return false;
  const next = vertical ? "ArrowDown" : "ArrowRight";
  const previous = vertical ? "ArrowUp" : "ArrowLeft";
  let target = null;
  if (event.key === next) target = items[Math.min(items.length - 1, index + 1)];
  else if (event.key === previous) target = items[Math.max(0, index - 1)];
  else if (event.key === "Home") target = items[0];
  else if (event.key === "End") target = items[items.length - 1];
  if (!target) return false;
  event.preventDefault();
  target.focus();
  return true;
}
