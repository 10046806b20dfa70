"""Code shared by every function: settings, session config, secrets, upstream client, observer launcher."""
