"""NER over OSINT: identification module, corpus, perturbations, encoder+CRF tagger."""
