"""The console's field for an IP allow list: one network per line, checked by the services."""

from django import forms

from accesscontrol.apikeys.ip_allow_lists import MAX_ENTRIES, MAX_ENTRY_LENGTH


def ip_allow_list_field(label, help_text) -> forms.CharField:
    """Text with one CIDR network per line (commas also separate). The services normalise and
    validate it (apikeys/ip_allow_lists.clean_allow_list); their errors name the entries."""
    return forms.CharField(
        label=label,
        required=False,
        max_length=MAX_ENTRIES * (MAX_ENTRY_LENGTH + 2),
        help_text=help_text,
        widget=forms.Textarea(
            attrs={"rows": 4, "spellcheck": "false", "placeholder": "203.0.113.0/24\n2001:db8::/32"}
        ),
    )


def as_text(networks) -> str:
    return "\n".join(networks)


class IpAllowListForm(forms.Form):
    def __init__(self, *args, label, help_text, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["ip_allow_list"] = ip_allow_list_field(label, help_text)
