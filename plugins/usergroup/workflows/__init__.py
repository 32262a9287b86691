"""Workflows: each one's custom steps, its input form and its step list."""
