"""Model sources, loading, training, generation and sentence embeddings."""
