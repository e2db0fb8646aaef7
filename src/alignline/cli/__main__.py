"""`python -m alignline.cli ...`, as torchrun and accelerate launch call it."""

import sys

from alignline.cli import main

sys.exit(main())
