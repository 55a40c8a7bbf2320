"""The labeling engine: the modules that own its rules (the task-counter ledger, the final-label resolver, typed project settings)."""
