"""A test plugin: items whose creation enqueues jobs and publishes events; effects recorded
once per idempotency key so tests can count side effects."""
