"""Comparing a revision with the workspace: what the `report` and `retrain` commands share.

Metrics, params and the data summary of each side are flattened to one level of scalars, so
any nesting compares key by key; a metric's name decides whether higher or lower is better.
The retrain gate instead scores two models on the same films (champion, paired, gate).
"""
