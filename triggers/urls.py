from django.urls import path

from . import hooks

urlpatterns = [
    path("<str:token>", hooks.receive, name="webhook"),
]
