"""Serving: pre-release input validation, scoring, and the FastAPI app (not a pipeline dependency).

Lives outside stages/lib on purpose: stages/lib is a DVC dependency of every stage, so
serving changes here never re-run the pipeline.
"""
