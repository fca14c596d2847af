# rules of the 'osint' section (see docs/DEVELOPING.md)
