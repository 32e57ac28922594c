"""Architecture searches driven by the compiler's own memory and MAC numbers."""
