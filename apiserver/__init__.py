"""Pilothouse apiserver package (see ../shared/DESIGN.md)."""
