"""ipywidgets front ends (thin adapters over the core)."""
