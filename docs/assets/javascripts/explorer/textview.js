// Text views: the model's input shown as text under a chart (filled in below).
export function updateTextView(record) {}
