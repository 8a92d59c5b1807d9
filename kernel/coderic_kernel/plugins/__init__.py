"""Finding, ordering, importing and registering plugins."""
