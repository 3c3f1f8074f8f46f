"""The webhook gateway: POST /hooks/<token>. Built out by the triggers work (issue 4)."""
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt


@csrf_exempt
def receive(request, token: str):
    return JsonResponse({"errors": [{"path": "", "message": "webhooks are not wired yet"}]}, status=501)
