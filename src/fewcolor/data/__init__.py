"""Datasets, split files, transforms, few-shot episodes, cluster tasks, dataset recipes."""
