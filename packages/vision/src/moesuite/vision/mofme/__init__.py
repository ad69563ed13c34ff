"""MoFME: all-weather restoration with feature-modulation experts (AAAI 2024)."""
