"""Load generation for ``%tfserve bench`` and ``tune``: clients in processes of their own, never the caller's threads."""
