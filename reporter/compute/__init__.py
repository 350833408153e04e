"""The compute stage: metrics from DuckDB, KPIs by formula, objectives, analyses."""
