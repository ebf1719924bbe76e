"""Retraining: data validation, training as a job the process waits on, one retrain per model,
champion/challenger decision, canary watch, promote or roll back."""
