import unicodedata

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.contrib.sessions.models import Session
from django.db import models
from django.utils import timezone


def normalize_email(value) -> str:
    """An email as accounts are stored and looked up: NFKC (as Django's sign-in form does),
    trimmed, lowercased. The one rule for every place that compares emails (sign-in, its throttle,
    the audit of failed sign-ins, sign-up, invitations), so an address typed with fullwidth letters
    or capitals is one account to all of them and a limit cannot be dodged by retyping it.
    """
    return unicodedata.normalize("NFKC", str(value or "")).strip().lower()


def creator():
    """Who made something, while their account lasts: the thing outlives them (keep a
    `created_by_label` beside it to remember who it was)."""
    return models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )


class UserManager(BaseUserManager):
    use_in_migrations = True

    def get_by_natural_key(self, username):
        # What the authentication backend looks up: normalised here too, whoever calls it.
        return super().get_by_natural_key(normalize_email(username))

    def create_user(self, email, password=None, **fields):
        if not email:
            raise ValueError("A user needs an email address")
        user = self.model(email=normalize_email(email), **fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email, password=None, **fields):
        fields.update(is_staff=True, is_superuser=True)
        return self.create_user(email, password, **fields)


class User(AbstractBaseUser, PermissionsMixin):
    """A person. Logs in with email; what they may do comes from memberships, never from here."""

    email = models.EmailField(unique=True)
    full_name = models.CharField(max_length=150, blank=True)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = []

    class Meta:
        ordering = ["email"]

    def __str__(self):
        return self.email

    @property
    def display_name(self):
        return self.full_name or self.email


class SignedInSession(models.Model):
    """A console session of a user, remembered at sign-in (accounts/sessions.py) so that all of
    them can be ended at once (deprovisioning) without reading every session in the table.

    It goes with its session (CASCADE), whatever deletes that: signing out, a new sign-in's
    key, ending them all, and `clearsessions` for expired ones (the session store is the
    database, where the foreign key also refuses a row for a session that is not there).
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="signed_in_sessions"
    )
    session = models.OneToOneField(
        Session, on_delete=models.CASCADE, db_column="session_key", related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"session of {self.user_id}"
