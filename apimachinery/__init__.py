"""Pilothouse apimachinery package (see ../shared/DESIGN.md)."""
