"""Form bodies of the sign-in, sign-out and change-password pages."""

from pydantic import BaseModel, ConfigDict, Field


class SignInForm(BaseModel):
    """The sign-in form; ``code`` is the authenticator code when the clinic requires one."""

    model_config = ConfigDict(extra="forbid")

    email: str = Field(default="", max_length=254)
    password: str = Field(default="", max_length=1024)
    code: str = Field(default="", max_length=16)
    next: str = Field(default="", max_length=2000)


class SignOutForm(BaseModel):
    """The sign-out form: only the session's CSRF token."""

    model_config = ConfigDict(extra="forbid")

    csrf_token: str = Field(default="", max_length=100)


class ChangePasswordForm(BaseModel):
    """The change-password form: the current password, the new one twice, where to go next."""

    model_config = ConfigDict(extra="forbid")

    csrf_token: str = Field(default="", max_length=100)
    current_password: str = Field(default="", max_length=1024)
    new_password: str = Field(default="", max_length=1024)
    confirm_password: str = Field(default="", max_length=1024)
    next: str = Field(default="", max_length=2000)
