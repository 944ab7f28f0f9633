"""The emitted NumPy trainer: its template context, printers, templates and rendering, and the
loading of an emitted file to check it."""
