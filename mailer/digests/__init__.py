"""Digests: compose the next one, snapshot its deliveries, send them in batches, the public archive."""
