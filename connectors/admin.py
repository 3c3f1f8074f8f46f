"""Secrets in the admin: the value is write-only. It is never rendered back; a blank field keeps the old one."""
from __future__ import annotations

from django import forms
from django.contrib import admin

from .models import Secret


class SecretForm(forms.ModelForm):
    new_value = forms.CharField(
        label="Value", required=False, strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password", "size": 60}),
        help_text="Write-only. Leave blank to keep the current value.",
    )

    class Meta:
        model = Secret
        fields = ["name", "description"]

    def clean(self):
        cleaned = super().clean()
        if not self.instance.pk and not cleaned.get("new_value"):
            self.add_error("new_value", "A new secret needs a value.")
        return cleaned

    def save(self, commit: bool = True):
        secret = super().save(commit=False)
        if self.cleaned_data.get("new_value"):
            secret.value = self.cleaned_data["new_value"]
        if commit:
            secret.save()
        return secret


@admin.register(Secret)
class SecretAdmin(admin.ModelAdmin):
    form = SecretForm
    fields = ["name", "new_value", "description"]
    list_display = ["name", "description", "updated_at"]
    search_fields = ["name", "description"]
