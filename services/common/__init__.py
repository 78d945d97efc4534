"""Runtime every service shares: settings, server bootstrap, interceptors, errors, Mongo, clients, logging."""
