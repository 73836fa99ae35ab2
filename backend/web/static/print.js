// The consult summary's print button (no inline script: the strict CSP stays).
for (const button of document.querySelectorAll('[data-print]')) {
  button.hidden = false;
  button.addEventListener('click', () => window.print());
}
