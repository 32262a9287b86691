"""The store's errors: a refusal (the rules said no) and the failures a retry may cure."""


class StoreError(RuntimeError):
    """A write the store refused; the message says why."""


class DuplicateNameError(StoreError):
    """A name (a group's, a user's) another subscription in its scope holds, or another process asks for."""


class StaleSubscriptionError(StoreError):
    pass


class RefusedError(StoreError):
    """A workflow may not act on the subscription (now): the process will not go on, it is aborted."""


class OutOfSyncError(RefusedError):
    pass


class ProcessAbortedError(StoreError):
    pass
