"""lhotse helpers: TSV corpora to manifests, feature extraction, sampling."""
