"""Pilothouse kvstore package (see ../shared/DESIGN.md)."""
