"""One module per rule kind: its strict model, its compile step and its evaluation. `rules.registry` lists them."""
