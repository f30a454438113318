"""Dialogs: ModalScreen subclasses that dismiss with their result."""
