"""Image and video I/O: RGB uint8 numpy arrays in and out, one clear error for bad files."""
