"""`{% flowforge_dashboard %}`: the operations dashboard on the admin index."""
from django import template

register = template.Library()


@register.inclusion_tag("admin/flowforge/dashboard.html", takes_context=True)
def flowforge_dashboard(context):
    from runs.admin_dashboard import dashboard

    request = context.get("request")
    # Every user's runs are in these figures: only for those who may view every run (SPEC §11, as the admin).
    if request is None or not request.user.is_staff or not request.user.has_perm("runs.view_workflowrun"):
        return {"show": False}
    return {"show": True, **dashboard()}
