"""Data preparation: rendering, ingestion and feature extraction. Writes datasets; never trains."""
