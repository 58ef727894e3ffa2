"""Face geometry every stage shares: alignment to the mean face, masks, head pose, landmark
smoothing and box overlap.

Pure functions on numpy arrays, no detector and no model: extract, train, convert and eval all
import from here, and this package imports nothing of theirs (faceswap keeps the same pieces in
``lib/align``). Detection itself (detectors, the landmark model, identity) stays in ``extract``.
"""
