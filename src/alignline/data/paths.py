"""Why a data path cannot be opened, in words: missing, a broken link, a symlink loop.

`Path.exists()` is False for all three, so a bare "no such file" sends a user looking for a file
that is there, as a link. The function lives in `alignline.errors` (the recipe loader needs it too,
and `config` sits below `data`); this name stays for the data readers.
"""

from __future__ import annotations

from alignline.errors import missing_reason

__all__ = ["missing_reason"]
