"""The ``singer`` connector: Singer taps (tap-jsonl, tap-postgres, ...) as sources, their STATE kept by Triad."""
