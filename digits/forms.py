"""Reading and checking form fields; every problem is collected per field, never raised one at a time."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from digits.errors import FieldErrors

TRUE_WORDS = ("1", "true", "yes", "on", "y")
FALSE_WORDS = ("0", "false", "no", "off", "n", "")


def plain_number(value: float) -> str:
    """A bound as people write it: whole numbers in full (4294967295, never 4.29497e+09), others as %g."""
    if isinstance(value, int) or (float(value).is_integer() and abs(value) < 1e16):
        return str(int(value))
    return f"{value:g}"


class FormReader:
    """Typed access to submitted fields; `errors` maps a field name to its messages, and knows the fields'
    labels (`labels`: field name -> the label a person sees) so that messages can name them."""

    def __init__(self, values: Mapping[str, Any], labels: Mapping[str, str] | None = None):
        self.values = values
        self.errors = FieldErrors(labels)

    def error(self, field: str, message: str) -> None:
        self.errors.setdefault(field, []).append(message)

    def raw(self, field: str) -> str | None:
        value = self.values.get(field)
        if value is None:
            return None
        return str(value).strip()

    def text(self, field: str, default: str = "", required: bool = False, max_length: int = 1000) -> str:
        value = self.raw(field)
        if not value:
            if required:
                self.error(field, "This field is required.")
            return default
        if len(value) > max_length:
            self.error(field, f"At most {max_length} characters.")
            return value[:max_length]
        return value

    def boolean(self, field: str, default: bool = False) -> bool:
        value = self.raw(field)
        if value is None:
            return default
        if value.lower() in TRUE_WORDS:
            return True
        if value.lower() in FALSE_WORDS:
            return False
        self.error(field, f"Expected true or false, got {value!r}.")
        return default

    def integer(
        self,
        field: str,
        default: int | None = None,
        minimum: int | None = None,
        maximum: int | None = None,
        required: bool = False,
    ) -> int | None:
        value = self.raw(field)
        if not value:
            if required:
                self.error(field, "This field is required.")
            return default
        try:
            number = int(value)
        except ValueError:
            self.error(field, f"Expected a whole number, got {value!r}.")
            return default
        return self._in_range(field, number, minimum, maximum, default)

    def number(
        self,
        field: str,
        default: float | None = None,
        minimum: float | None = None,
        maximum: float | None = None,
        required: bool = False,
        exclusive_minimum: bool = False,
    ) -> float | None:
        value = self.raw(field)
        if not value:
            if required:
                self.error(field, "This field is required.")
            return default
        try:
            number = float(value)
        except ValueError:
            self.error(field, f"Expected a number, got {value!r}.")
            return default
        if not math.isfinite(number):
            self.error(field, "Expected a finite number.")
            return default
        if exclusive_minimum and minimum is not None and number <= minimum:
            self.error(field, f"Must be greater than {plain_number(minimum)}.")
            return default
        return self._in_range(field, number, minimum, maximum, default)

    def _in_range(self, field, number, minimum, maximum, default):
        if minimum is not None and number < minimum:
            self.error(field, f"Must be at least {plain_number(minimum)}.")
            return default
        if maximum is not None and number > maximum:
            self.error(field, f"Must be at most {plain_number(maximum)}.")
            return default
        return number

    def choice(self, field: str, choices: tuple[str, ...], default: str) -> str:
        value = self.raw(field)
        if not value:
            return default
        if value not in choices:
            self.error(field, f"Choose one of {', '.join(choices)} (got {value!r}).")
            return default
        return value
