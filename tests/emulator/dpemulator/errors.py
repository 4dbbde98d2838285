"""Error types the HTTP layer renders in the shape of the service that raised them.

Handlers raise ApiError; server.py renders it as an ARM CloudError, a Key Vault error, a blob XML
error or an AAD error, depending on the route that failed.
"""


class ApiError(Exception):
    def __init__(self, status, code, message, headers=None, inner=None, user_facing=None, target=None):
        super().__init__("%s: %s" % (code, message))
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.inner = inner              # Key Vault innererror code
        self.user_facing = user_facing  # a UserFacingError dict for ARM additionalInfo
        self.target = target


def user_facing_error(code, message, recommended_action=None, is_retryable=False, is_user_error=True,
                      target=None, properties=None):
    """The UserFacingError of Microsoft.DataProtection (reference §3): recommendedAction is a list."""
    actions = recommended_action if isinstance(recommended_action, list) else (
        [recommended_action] if recommended_action else [])
    return {
        "code": code,
        "message": message,
        "recommendedAction": actions,
        "isRetryable": is_retryable,
        "isUserError": is_user_error,
        "target": target or "",
        "properties": dict(properties or {}),
        "innerError": {"code": code, "additionalInfo": {"DetailedNonLocalisedMessage": message},
                       "embeddedInnerError": None},
        "details": None,
    }


def cloud_error(code, message, target=None, user_facing=None):
    """ARM CloudError body; for this service additionalInfo carries the UserFacingError."""
    err = {"code": code, "message": message}
    if target:
        err["target"] = target
    if user_facing is not None:
        err["details"] = None
        err["additionalInfo"] = [{"type": "UserFacingError", "info": user_facing}]
    return {"error": err}


class UserError(Exception):
    """A Data Protection rule violation: becomes a Failed operation or job with a UserFacingError."""

    def __init__(self, code, message, recommended_action=None, is_retryable=False):
        super().__init__("%s: %s" % (code, message))
        self.code = code
        self.message = message
        self.recommended_action = recommended_action
        self.is_retryable = is_retryable

    def user_facing(self):
        return user_facing_error(self.code, self.message, self.recommended_action, self.is_retryable)

    def as_error(self):
        """The `error` object of a Failed OperationResource."""
        return {"code": self.code, "message": self.message,
                "additionalInfo": [{"type": "UserFacingError", "info": self.user_facing()}]}


def bad_request(message, code="UserErrorInvalidRequestParameter", target=None):
    """A malformed request body: 400 with CloudError + UserFacingError, like the service's own validation."""
    uf = user_facing_error(code, message, "Fix the request body to match the API specification.", target=target)
    return ApiError(400, code, message, user_facing=uf, target=target)


def not_found(resource_type, name, resource_group=None):
    """ARM's 404 for a resource that is not there."""
    where = " under resource group '%s'" % resource_group if resource_group else ""
    return ApiError(404, "ResourceNotFound",
                    "The Resource '%s/%s'%s was not found. For more details please go to "
                    "https://aka.ms/ARMResourceNotFoundFix" % (resource_type, name, where))
