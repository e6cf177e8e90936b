"""Billing systems' records (Stripe, Adyen, Lago, Chargebee events) mapped to the API's request and
outcome schemas: one module per system, used by the webhook routes and the importers."""
