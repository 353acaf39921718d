"""Domain services shared by the web tier and the workers (logic that tasks and handlers call)."""
