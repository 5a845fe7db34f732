// Page-wide fixes that are not about figures.
//
// Material's search overlay is a role="dialog" without a name; screen readers (and Lighthouse's
// accessibility audit) need one.
function nameDialogs() {
  for (const dialog of document.querySelectorAll('.md-search[role="dialog"]:not([aria-label])')) dialog.setAttribute("aria-label", "Search");
}

nameDialogs();
document$.subscribe(nameDialogs);
