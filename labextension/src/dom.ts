/**
 * Tiny DOM builders for the panel (no framework: the panel is a list re-rendered on each refresh).
 */

type Child = Node | string | null | undefined | false;

/** Create an element with attributes (`class`, `data-*`, `title`, …) and children. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: { [name: string]: string | number | undefined } = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value !== undefined) {
      el.setAttribute(name, String(value));
    }
  }
  for (const child of children) {
    if (child !== null && child !== undefined && child !== false) {
      el.append(child);
    }
  }
  return el;
}

const SVG_NS = 'http://www.w3.org/2000/svg';

/** An inline SVG sparkline of one path. */
export function sparkline(
  path: string,
  width: number,
  height: number,
  cls: string
): SVGSVGElement {
  const svg = document.createElementNS(SVG_NS, 'svg');
  svg.setAttribute('class', `jp-TfServe-spark ${cls}`);
  svg.setAttribute('width', String(width));
  svg.setAttribute('height', String(height));
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
  svg.setAttribute('aria-hidden', 'true');
  const line = document.createElementNS(SVG_NS, 'path');
  line.setAttribute('d', path);
  svg.append(line);
  return svg;
}
