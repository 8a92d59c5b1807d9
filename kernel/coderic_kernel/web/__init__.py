"""The web layer: app factory, route adapter, problem responses, middleware, health."""
