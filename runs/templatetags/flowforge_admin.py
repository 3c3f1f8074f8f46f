"""`{% flowforge_dashboard %}`: the operations dashboard on the admin index."""
from django import template

register = template.Library()


@register.inclusion_tag("admin/flowforge/dashboard.html", takes_context=True)
def flowforge_dashboard(context):
    from runs.admin_dashboard import dashboard

    request = context.get("request")
    if request is None or not request.user.is_staff:
        return {"show": False}
    return {"show": True, **dashboard()}
