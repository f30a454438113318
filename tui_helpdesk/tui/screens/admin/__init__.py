"""Admin screens (F2, F3, F10-F22, F30-F34, F60, F61, F76): a menu, then one screen per concern."""
