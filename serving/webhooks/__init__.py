"""Webhook routes for billing systems (Stripe, Adyen, Lago): verify the sender's signature,
map the event (:mod:`training.integrations`), then decide or store it through the same
functions as ``/v1/recommendations`` and ``/v1/outcomes``."""
