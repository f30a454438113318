"""Screens start background work and hand results to their widgets."""
