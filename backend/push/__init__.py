"""Web Push: subscriptions, the push queue and the sender (VAPID, RFC 8291 encryption)."""
