"""Pilothouse kubelet package (see ../shared/DESIGN.md)."""
