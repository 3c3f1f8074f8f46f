"""What the workflows layer announces to the layers above it, which connect receivers in their `AppConfig.ready()`.

Both are sent inside the service's transaction with `send` (not `send_robust`): a receiver that raises rolls the
save back or refuses the delete.
"""
from django.dispatch import Signal

# Sent by `workflow_save` once the workflow and its version are stored; kwargs `workflow`, `spec` (compiled).
# The triggers app syncs the workflow's periodic tasks.
workflow_saved = Signal()

# Sent by `workflow_delete` with the workflow row locked, before anything is deleted; kwarg `workflow`. A
# receiver raises `workflows.services.WorkflowBusy` to refuse: the runs app does while runs are unfinished.
workflow_deleting = Signal()
