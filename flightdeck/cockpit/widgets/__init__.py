"""One module per cockpit panel; each renders a ``View`` into Rich ``Text``."""
