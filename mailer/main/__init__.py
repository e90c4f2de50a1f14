"""Public pages that belong to no other package: the home page and health check."""
