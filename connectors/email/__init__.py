"""email.send: mail through Django's e-mail backend."""
