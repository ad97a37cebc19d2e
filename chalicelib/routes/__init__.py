"""HTTP handlers, one module per resource; `table.py` lists every route in one place."""
