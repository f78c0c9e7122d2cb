"""Pilothouse apiclient package (see ../shared/DESIGN.md)."""
