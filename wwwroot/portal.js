// Portal helpers called from Blazor components.
window.attnPortal = {
  focus: (el) => el && el.focus(),
  // Position of a click inside an element, in its own CSS pixels (for picking a cell of the head grid).
  clickOffset: (el, clientX, clientY) => { const r = el.getBoundingClientRect(); return [clientX - r.left, clientY - r.top, r.width, r.height]; }
};
