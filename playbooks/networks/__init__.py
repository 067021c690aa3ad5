"""Shipped river network files (YAML); see example.yaml for the format."""
