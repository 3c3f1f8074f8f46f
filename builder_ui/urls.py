from django.urls import path

from . import views

urlpatterns = [
    path("", views.builder, name="builder-new"),
    path("<int:workflow_id>/", views.builder, name="builder-edit"),
]
