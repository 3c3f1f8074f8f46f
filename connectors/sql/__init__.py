"""sql.query: one parameterised query against a PostgreSQL or MySQL/MariaDB database named by a vault secret."""
