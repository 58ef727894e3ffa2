"""facetwin: a face-swap toolkit (extract -> train -> convert -> eval) in Python and PyTorch.

Every output it makes is labelled as synthetic by default. Use it only on faces of people who
have consented.
"""

__version__ = "0.1.0"
