"""Everything that imports IPython: magics and rich displays."""
