// Nothing typed is lost when a session runs out (web/clinic.py):
// 1. every form tells the server which page it was posted from (`_page`), so after signing in
//    again the clinician lands there;
// 2. on that page the server hands back what was typed (#pw-restore, a JSON data block: no
//    inline script, the CSP stays strict) and it is put back into the same form.
for (const form of document.querySelectorAll('form[method="post"]')) {
  form.addEventListener('submit', () => {
    let field = form.querySelector('input[name="_page"]');
    if (!field) {
      field = document.createElement('input');
      field.type = 'hidden';
      field.name = '_page';
      form.append(field);
    }
    field.value = location.pathname + location.search;
  });
}

const held = document.getElementById('pw-restore');
if (held) {
  const { action, fields } = JSON.parse(held.textContent);
  const form = [...document.querySelectorAll('form')].find((f) => f.getAttribute('action') === action);
  if (form) {
    for (const [name, value] of Object.entries(fields)) {
      const input = form.elements.namedItem(name);
      if (input && input.type !== 'hidden' && input.type !== 'password') input.value = value;
    }
    const first = [...form.elements].find((e) => e.value && (e.tagName === 'TEXTAREA' || e.type === 'text'));
    (first || form).focus?.();
  }
}
