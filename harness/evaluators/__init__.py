"""Phase evaluators: turn a subject and a dataset into per-item Outcomes."""
