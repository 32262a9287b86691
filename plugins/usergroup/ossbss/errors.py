"""The OSS/BSS's errors, in two kinds: whether another try may cure it decides whether a step is retried.

A client raises a `TransientError` when the OSS/BSS did not answer (another try may: the step is retried with its
backoff) and a `PermanentError` when it answered no (no retry cures it: the task fails at once, and an operator
acts). Builtin exceptions (`ValueError`, `KeyError`, ...) decide nothing: a bug is retried like an outage.
"""


class OssBssError(Exception):
    """An error of the OSS/BSS; raise one of its two kinds (one of neither is retried, as a transient one)."""


class TransientError(OssBssError):
    """The OSS/BSS did not answer (away, busy, timed out): another try may."""


class PermanentError(OssBssError):
    """The OSS/BSS answered no: no retry cures it."""


class NotFoundError(PermanentError):
    """The OSS/BSS holds no group (user) for the subscription."""


class RefusedByOssBssError(PermanentError):
    """The OSS/BSS refused the request for this item (a name it does not take)."""
