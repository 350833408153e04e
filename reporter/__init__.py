"""reporter: scheduled KPI reports declared in YAML."""

__version__ = "0.1.0"
