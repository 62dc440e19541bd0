"""Dataset preparation: render (`render`), ingest (`ingest`) and featurize (`features`)
instrument tracks; run each as `python -m data_prep.NAME --help`. Writes datasets, never trains."""
