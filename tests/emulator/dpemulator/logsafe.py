"""Logging that cannot leak secrets: every known secret value (world passwords and client secrets,
Key Vault secret values and the passwords inside them, the control token) is masked in each record."""
import logging
import threading

from . import postgres as pg


class SecretRegistry:
    def __init__(self):
        self.lock = threading.Lock()
        self.values = set()

    def add(self, value):
        if not value or not isinstance(value, str) or len(value) < 4:
            return
        with self.lock:
            self.values.add(value)
            try:
                password = pg.parse_ado_connection_string(value).get("password")
            except ValueError:
                password = None
            if password and len(password) >= 4:
                self.values.add(password)

    def redact(self, text):
        with self.lock:
            values = sorted(self.values, key=len, reverse=True)
        for v in values:
            if v in text:
                text = text.replace(v, "***")
        return text


class RedactingFormatter(logging.Formatter):
    def __init__(self, registry, fmt):
        super().__init__(fmt)
        self.registry = registry

    def format(self, record):
        return self.registry.redact(super().format(record))


def setup_logging(registry, stream, level=logging.INFO):
    handler = logging.StreamHandler(stream)
    handler.setFormatter(RedactingFormatter(registry, "%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    return handler
