# rules of the 'ner' section (see docs/DEVELOPING.md)
