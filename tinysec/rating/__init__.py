"""Ratings from pairwise battles: online Elo (file order and shuffled), Bradley-Terry with bootstrap CIs."""
