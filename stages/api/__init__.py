"""The HTTP service: FastAPI app, settings and Prometheus metrics (no pipeline dependency)."""
