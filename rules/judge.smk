# rules of the 'judge' section (see docs/DEVELOPING.md)
