"""Pilothouse controllers package (see ../shared/DESIGN.md)."""
