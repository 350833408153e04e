"""The render stage: Results → localised context → HTML (Jinja) → PDF (WeasyPrint)."""
