"""Code generators: runnable, course-style PyTorch code for exactly what a page shows (one module per page)."""
