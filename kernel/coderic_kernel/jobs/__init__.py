"""Background jobs: the outbox, the relay that feeds the queue, and the executor that runs
each job at most once per attempt and records the outcome."""
