# rules of the 'ner_data' section (see docs/DEVELOPING.md)
