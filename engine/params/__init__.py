"""engine/params."""
