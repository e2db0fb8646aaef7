"""alignline: take a pretrained language model to an aligned one, with gates at every stage."""

__version__ = "0.1.0"
