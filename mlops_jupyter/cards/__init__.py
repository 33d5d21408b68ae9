"""Model cards: built from the store, rendered to HTML, Model Card Toolkit JSON and Markdown."""
