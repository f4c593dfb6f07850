"""Evaluation: preference accuracy and calibration, win rates, reports."""
