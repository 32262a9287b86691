"""The enumerations orchestrator-core's workflows speak: lifecycle, target, process status."""

from enum import StrEnum


class SubscriptionLifecycle(StrEnum):
    INITIAL = "initial"
    PROVISIONING = "provisioning"
    ACTIVE = "active"
    DISABLED = "disabled"
    TERMINATED = "terminated"
    MIGRATING = "migrating"


class Target(StrEnum):
    CREATE = "CREATE"
    MODIFY = "MODIFY"
    TERMINATE = "TERMINATE"
    SYSTEM = "SYSTEM"
    VALIDATE = "VALIDATE"


class ProcessStatus(StrEnum):
    CREATED = "created"
    RUNNING = "running"
    SUSPENDED = "suspended"  # waiting for an operator's answer (an input step)
    FAILED = "failed"
    ABORTED = "aborted"
    COMPLETED = "completed"
