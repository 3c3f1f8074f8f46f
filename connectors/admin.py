"""Secrets in the admin, per owner (SPEC §11): superusers see every secret with its owner and may assign one;
other staff see and edit only their own, and a secret they add is theirs. The value is write-only: it is never
rendered back (nor decrypted for a page); a blank field keeps the old one. OAuth2 providers likewise keep their
client secret write-only, and can start from a preset (Google, Slack, Microsoft, GitHub)."""
from __future__ import annotations

from django import forms
from django.contrib import admin

from .models import Provider, Secret
from .oauth2.providers import PRESETS
from .secrets import secret_name_problem, secret_value_problem


class SecretForm(forms.ModelForm):
    new_value = forms.CharField(
        label="Value", required=False, strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password", "size": 60}),
        help_text="Write-only. Leave blank to keep the current value.",
    )
    owner_on_add = None  # the requesting user, set by SecretAdmin.get_form when the form has no owner field

    class Meta:
        model = Secret
        fields = ["owner", "name", "description"]

    def clean(self):
        cleaned = super().clean()
        if not self.instance.pk and not cleaned.get("new_value"):
            self.add_error("new_value", "A new secret needs a value.")
        if cleaned.get("new_value") and (problem := secret_value_problem(cleaned["new_value"])):
            self.add_error("new_value", problem)
        name = cleaned.get("name")
        if name is not None and (problem := secret_name_problem(name)):
            self.add_error("name", problem)
        elif name is not None and self._name_taken(name, cleaned):
            self.add_error("name", f"{self._owner(cleaned)} already has a secret named '{name}'.")
        return cleaned

    def _owner(self, cleaned: dict):
        if "owner" in self.fields:
            return cleaned.get("owner")
        return self.instance.owner if self.instance.pk else self.owner_on_add

    def _name_taken(self, name: str, cleaned: dict) -> bool:
        # The (owner, name) constraint is not checked by the ModelForm when owner is not one of its fields.
        owner = self._owner(cleaned)
        mine = Secret.objects.filter(owner=owner, name=name) if owner else Secret.objects.none()
        return mine.exclude(pk=self.instance.pk).exists()

    def save(self, commit: bool = True):
        secret = super().save(commit=False)
        if not secret.pk and "owner" not in self.fields:
            secret.owner = self.owner_on_add
        if self.cleaned_data.get("new_value"):
            secret.value = self.cleaned_data["new_value"]
        if commit:
            secret.save()
        return secret


@admin.register(Secret)
class SecretAdmin(admin.ModelAdmin):
    form = SecretForm
    search_fields = ["name", "description"]

    def get_queryset(self, request):
        # Never decrypt for a page: the value is not shown, and a lost key must not break the list.
        secrets = super().get_queryset(request).defer("value").select_related("owner")
        return secrets if request.user.is_superuser else secrets.filter(owner=request.user)

    def get_fields(self, request, obj=None):
        fields = ["name", "new_value", "description"]
        return ["owner", *fields] if request.user.is_superuser else fields

    def get_list_display(self, request):
        columns = ["name", "description", "updated_at"]
        return ["name", "owner", "description", "updated_at"] if request.user.is_superuser else columns

    def get_list_filter(self, request):
        return ["owner"] if request.user.is_superuser else []

    def get_search_fields(self, request):
        return [*self.search_fields, "owner__username"] if request.user.is_superuser else self.search_fields

    def get_changeform_initial_data(self, request) -> dict:
        return {"owner": request.user.pk, **super().get_changeform_initial_data(request)}

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        return type(form.__name__, (form,), {"owner_on_add": request.user})

    def _owns(self, request, obj) -> bool:
        return obj is None or request.user.is_superuser or obj.owner_id == request.user.id

    def has_view_permission(self, request, obj=None) -> bool:
        return super().has_view_permission(request, obj) and self._owns(request, obj)

    def has_change_permission(self, request, obj=None) -> bool:
        return super().has_change_permission(request, obj) and self._owns(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return super().has_delete_permission(request, obj) and self._owns(request, obj)


class ProviderForm(forms.ModelForm):
    """A provider; the client secret is write-only (never rendered back; blank keeps it) and a preset fills in
    the endpoints, scopes and options left blank."""

    preset = forms.ChoiceField(
        required=False, choices=[("", "—"), *((key, value["title"]) for key, value in sorted(PRESETS.items()))],
        help_text="Fill in the endpoints and usual scopes of a known provider (fields you typed win).",
    )
    new_client_secret = forms.CharField(
        label="Client secret", required=False, strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password", "size": 60}),
        help_text="Write-only. Leave blank to keep the current secret.",
    )
    FILLED_BY_PRESET = ("title", "authorize_url", "token_url", "userinfo_url", "scopes", "extra_authorize_params",
                        "userinfo_id_field", "userinfo_login_field")
    REQUIRED = ("authorize_url", "token_url", "userinfo_url")  # optional above: a preset may provide them

    authorize_url = forms.URLField(max_length=500, required=False, assume_scheme="https")
    token_url = forms.URLField(max_length=500, required=False, assume_scheme="https")
    userinfo_url = forms.URLField(max_length=500, required=False, assume_scheme="https")

    class Meta:
        model = Provider
        fields = ["name", "title", "preset", "authorize_url", "token_url", "userinfo_url", "scopes", "client_id",
                  "pkce", "extra_authorize_params", "userinfo_id_field", "userinfo_login_field"]

    def clean(self):
        cleaned = super().clean()
        preset = PRESETS.get(cleaned.get("preset") or "")
        if preset:
            for name in self.FILLED_BY_PRESET:
                if name in preset and cleaned.get(name) in (None, "", [], {}):
                    cleaned[name] = preset[name]
            if not self.instance.pk:
                cleaned["pkce"] = preset.get("pkce", cleaned.get("pkce"))
        for name in self.REQUIRED:
            if not cleaned.get(name) and name not in self.errors:
                self.add_error(name, "Required (or choose a preset).")
        if not self.instance.pk and not cleaned.get("new_client_secret"):
            self.add_error("new_client_secret", "A new provider needs its client secret.")
        return cleaned

    def _post_clean(self):
        # The preset's values were put into cleaned_data; copy them onto the instance like the form's own fields.
        super()._post_clean()
        for name in self.FILLED_BY_PRESET + ("pkce",):
            if name in self.cleaned_data:
                setattr(self.instance, name, self.cleaned_data[name])

    def save(self, commit: bool = True):
        provider = super().save(commit=False)
        if self.cleaned_data.get("new_client_secret"):
            provider.client_secret = self.cleaned_data["new_client_secret"]
        if commit:
            provider.save()
        return provider


@admin.register(Provider)
class ProviderAdmin(admin.ModelAdmin):
    form = ProviderForm
    list_display = ("name", "title", "authorize_url", "pkce", "updated_at")
    search_fields = ("name", "title")
    fields = ("name", "title", "preset", "authorize_url", "token_url", "userinfo_url", "scopes", "client_id",
              "new_client_secret", "pkce", "extra_authorize_params", "userinfo_id_field", "userinfo_login_field")

    def get_queryset(self, request):
        return super().get_queryset(request).defer("client_secret")  # never decrypted for a page
