"""The Stripe adapter of the `PasarelaDePagos` port."""
