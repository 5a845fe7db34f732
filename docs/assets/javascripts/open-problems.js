// The open-problems board (docs/research/open-problems.md, written by explorer/open_problems.py):
// filter the problems by category and status. Everything it filters is already in the page; the
// choice is kept in the address (?category=4&status=evidence) so a view can be shared, and nothing
// is stored or sent. Text is only ever set with textContent.

const FILTERS = ["category", "status"];

function wanted(form) {
  return Object.fromEntries(FILTERS.map((name) => [name, form.elements[name].value]));
}

function apply(board, form) {
  const want = wanted(form);
  let shown = 0;
  for (const section of board.querySelectorAll(".op-category")) {
    let inSection = 0;
    for (const item of section.querySelectorAll(".op-problem")) {
      const match = FILTERS.every((name) => !want[name] || item.dataset[name] === want[name]);
      item.hidden = !match;
      if (match) inSection += 1;
    }
    section.hidden = inSection === 0;
    shown += inSection;
  }
  const total = Number(board.dataset.total);
  form.querySelector(".op-count").textContent =
    shown === 0 ? `No problem matches these filters (of ${total}).` : `${shown} of ${total} problems`;
  return want;
}

function remember(want) {
  const params = new URLSearchParams(location.search);
  for (const name of FILTERS) {
    if (want[name]) params.set(name, want[name]);
    else params.delete(name);
  }
  const query = params.toString();
  const url = location.pathname + (query ? `?${query}` : "") + location.hash;
  if (url !== location.pathname + location.search + location.hash) history.replaceState(history.state, "", url);
}

function attach(board) {
  if (board.dataset.ready) return;
  board.dataset.ready = "true";
  const form = board.querySelector(".op-filters");
  if (!form) return;
  const params = new URLSearchParams(location.search);
  for (const name of FILTERS) {
    const select = form.elements[name];
    const value = params.get(name);
    if (value !== null && [...select.options].some((option) => option.value === value)) select.value = value;
    select.addEventListener("change", () => remember(apply(board, form)));
  }
  form.addEventListener("submit", (event) => event.preventDefault());
  form.hidden = false;
  apply(board, form);
}

function setUp() {
  for (const board of document.querySelectorAll(".op-board")) attach(board);
}

if (typeof document$ !== "undefined") document$.subscribe(setUp);
else setUp();
