"""What a running Tara keeps across restarts: the knowledge base and the voice library."""
