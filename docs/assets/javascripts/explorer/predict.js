// Predict, then check (the {{ predict }} shortcode, explorer/site/shortcodes.py): the reader picks a
// choice, the measured answer appears beside it. Nothing is stored or sent: the pick lives in the
// page until the reader leaves it.

function attach(box) {
  if (box.dataset.ready) return;
  box.dataset.ready = "true";
  const answer = box.querySelector(".explorer-predict__answer");
  for (const button of box.querySelectorAll(".explorer-predict__choice")) {
    button.addEventListener("click", () => {
      for (const other of box.querySelectorAll(".explorer-predict__choice")) {
        other.setAttribute("aria-pressed", String(other === button));
        other.classList.toggle("is-right", other.hasAttribute("data-right"));
      }
      const right = button.hasAttribute("data-right");
      box.dataset.verdict = right ? "right" : "wrong";
      let verdict = answer.querySelector(".explorer-predict__verdict");
      if (!verdict) {
        verdict = document.createElement("span");
        verdict.className = "explorer-predict__verdict";
        answer.prepend(verdict);
      }
      verdict.textContent = right ? "Your pick matches the measurement. " : "Not what we measured. ";
      answer.hidden = false;
    });
  }
}

function setUp() {
  for (const box of document.querySelectorAll(".explorer-predict")) attach(box);
}

if (typeof document$ !== "undefined") document$.subscribe(setUp);
else setUp();
