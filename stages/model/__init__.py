"""The model: features, fitting, baselines, metrics, plots and the saved artefact."""
