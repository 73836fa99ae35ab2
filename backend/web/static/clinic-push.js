// Clinicians opt in to a Web Push when an urgent alert escalates (nobody acknowledged it in
// time). The pushed message says only that an urgent alert is open: no patient data.
const button = document.getElementById('push-optin');
const status = document.getElementById('push-status');

function keyBytes(b64url) {
  const b64 = b64url.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (b64url.length % 4)) % 4);
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

async function optIn() {
  try {
    const registration = await navigator.serviceWorker.register('/sw.js');
    await navigator.serviceWorker.ready;
    if ((await Notification.requestPermission()) !== 'granted') {
      status.textContent = 'De browser gaf geen toestemming voor meldingen.';
      return;
    }
    const { key } = await (await fetch('/clinic/push/key')).json();
    const subscription = await registration.pushManager.subscribe({
      userVisibleOnly: true, applicationServerKey: keyBytes(key),
    });
    const body = new URLSearchParams({
      csrf_token: button.dataset.csrf, subscription: JSON.stringify(subscription),
    });
    const answer = await fetch('/clinic/push/subscriptions', { method: 'POST', body });
    status.textContent = answer.ok
      ? 'Geëscaleerde urgente meldingen komen nu ook op dit apparaat.'
      : 'Aanmelden voor meldingen is mislukt.';
  } catch (error) {
    status.textContent = `Aanmelden voor meldingen is mislukt (${error.message}).`;
  }
}

if (button && 'serviceWorker' in navigator && 'PushManager' in window) {
  button.hidden = false;
  button.addEventListener('click', optIn);
}
