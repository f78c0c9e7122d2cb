"""Pilothouse proxy package (see ../shared/DESIGN.md)."""
