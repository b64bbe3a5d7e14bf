"""The one exception type a student can act on."""
from __future__ import annotations


class CourseError(Exception):
    """A clear, translatable error: `code` names the message, `params` fill it in.

    The app shows the catalog entry `error.<code>` (with `params`) in the user's language; the command line
    and notebooks see the English `message` (formatted with the same params).
    Codes are dotted lower-case (`zip.traversal`, `conv.stride_zero`); every code raised
    in dl_core has an `error.<code>` entry in the app's catalogs (a test checks it).
    """

    def __init__(self, code: str, message: str, **params: object) -> None:
        self.code = code
        self.params = params
        super().__init__(message.format(**params) if params else message)
