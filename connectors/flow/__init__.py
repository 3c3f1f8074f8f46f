"""flow.*: actions that pause their task (wait, approval, child run) or shape the webhook answer (SPEC §9)."""
