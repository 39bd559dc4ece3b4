"""Scoring pre-release movies with a trained model: validation, scores, batch files."""
