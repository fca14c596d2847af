"""Pairwise judging: judges (reference, api, hf), verdict parsing, order-swapped battles, content cache."""
