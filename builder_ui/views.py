from django.contrib.auth.decorators import login_required
from django.http import HttpResponse


@login_required
def builder(request, workflow_id: int | None = None):
    return HttpResponse("The builder page is being wired (issue 7).")
