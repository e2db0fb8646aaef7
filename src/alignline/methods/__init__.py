"""One thin module per method; the registry maps a recipe's `method:` to it."""

from alignline.methods.cpt import CPT
from alignline.methods.sft import SFT

METHODS = {"sft": SFT(), "cpt": CPT}


def get_method(name: str):
    return METHODS[name]
