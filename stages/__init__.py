"""Movie commercial-success pipeline: one module per DVC stage or command (see README)."""
