# rules of the 'instruct' section (see docs/DEVELOPING.md)
