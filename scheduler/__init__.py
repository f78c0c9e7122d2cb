"""Pilothouse scheduler package (see ../shared/DESIGN.md)."""
