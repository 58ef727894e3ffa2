"""Stage 1: find faces, landmarks, alignment, masks and identity; write a face set."""
