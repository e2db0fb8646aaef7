"""Human annotation: the store, the web app, and active learning (which pairs to label next)."""
