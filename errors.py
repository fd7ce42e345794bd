"""The one exception type the CLI turns into a one-line error (exit code 2)."""


class UserError(Exception):
    """A problem the user can fix; the message is one line that names the fix (a flag, a file)."""
