"""Pilothouse pilot package (see ../shared/DESIGN.md)."""
