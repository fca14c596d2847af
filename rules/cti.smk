# rules of the 'cti' section (see docs/DEVELOPING.md)
