"""A test plugin: greetings stored in its own table and served under /api/v1/hello/."""
