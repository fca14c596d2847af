"""Instruction data for the small-LLM study: readers (Alpaca, HackMentor seeds), cleaning,
the ATT&CK-built embedded dataset and checked downloads."""
