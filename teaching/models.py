"""Taught preferences and concepts arrive with the teaching issue."""
