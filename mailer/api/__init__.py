"""The JSON API for the organisation's own site (``/api/v1``)."""
