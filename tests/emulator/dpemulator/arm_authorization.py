"""Microsoft.Authorization: built-in role definitions and role assignments at any scope, with the
inheritance rules of Azure RBAC (an assignment applies at its scope and below)."""
import re
import uuid

from . import apiversions
from .arm_common import authorize
from .errors import ApiError
from .roles import ROLES_BY_GUID, ROLES_BY_NAME, role_guid_from_id
from .server import ARM, empty_response, json_response
from .util import iso, norm_id, now, scope_covers

SCOPE = r"(?P<scope>(?:/subscriptions/(?P<sub>[^/]+))?(?:/.*?)?)"
AUTHZ = r"/providers/Microsoft\.Authorization"


class AuthorizationProvider:
    def __init__(self, app):
        self.app = app

    def seed(self, data):
        world = self.app.world
        for ra in world.initial_role_assignments:
            role = ROLES_BY_NAME.get(ra["role"].lower())
            if role is None:
                raise ValueError("world: unknown role %r" % ra["role"])
            name = str(uuid.uuid5(uuid.NAMESPACE_URL, "%s|%s|%s" % (ra["scope"].lower(), role["guid"],
                                                                    ra["principal_id"])))
            data["role_assignments"][name] = self._record(name, ra["scope"], self.role_id(world.default_subscription,
                                                                                          role["guid"]),
                                                          ra["principal_id"], "world")

    def register(self, r):
        v = apiversions.AUTHORIZATION
        r.add("GET", SCOPE + AUTHZ + r"/roleDefinitions", self.list_definitions, ARM, "authorization.roleDefinitions.list", v)
        r.add("GET", SCOPE + AUTHZ + r"/roleDefinitions/(?P<guid>[^/]+)", self.get_definition, ARM,
              "authorization.roleDefinitions.get", v)
        r.add("GET", SCOPE + AUTHZ + r"/roleAssignments", self.list_assignments, ARM,
              "authorization.roleAssignments.list", v)
        r.add("GET", SCOPE + AUTHZ + r"/roleAssignments/(?P<name>[^/]+)", self.get_assignment, ARM,
              "authorization.roleAssignments.get", v)
        r.add("PUT", SCOPE + AUTHZ + r"/roleAssignments/(?P<name>[^/]+)", self.put_assignment, ARM,
              "authorization.roleAssignments.put", v)
        r.add("DELETE", SCOPE + AUTHZ + r"/roleAssignments/(?P<name>[^/]+)", self.delete_assignment, ARM,
              "authorization.roleAssignments.delete", v)

    # ----------------------------------------------------------------------------------- definitions
    @staticmethod
    def role_id(sub, guid):
        return "/subscriptions/%s/providers/Microsoft.Authorization/roleDefinitions/%s" % (sub, guid)

    def definition_json(self, scope, role):
        return {"id": "%s/providers/Microsoft.Authorization/roleDefinitions/%s" % (scope or "", role["guid"]),
                "type": "Microsoft.Authorization/roleDefinitions", "name": role["guid"],
                "properties": {"roleName": role["name"], "type": "BuiltInRole", "description": role["description"],
                               "assignableScopes": ["/"],
                               "permissions": [{"actions": role["actions"], "notActions": role["notActions"],
                                                "dataActions": role["dataActions"],
                                                "notDataActions": role["notDataActions"]}],
                               "createdOn": "2015-02-02T21:55:09.8806423Z", "updatedOn": "2024-01-01T00:00:00.0000000Z",
                               "createdBy": None, "updatedBy": None}}

    def list_definitions(self, req, scope, sub=None):
        flt = req.q("$filter") or ""
        roles = list(ROLES_BY_GUID.values())
        for clause in [c.strip() for c in re.split(r"\s+and\s+", flt, flags=re.I) if c.strip()]:
            m = re.fullmatch(r"roleName\s+eq\s+'(.*)'", clause, re.I)
            t = re.fullmatch(r"type\s+eq\s+'(.*)'", clause, re.I)
            if m:
                roles = [r for r in roles if r["name"].lower() == m.group(1).replace("''", "'").lower()]
            elif t:
                roles = roles if t.group(1).lower() == "builtinrole" else []
            else:
                raise ApiError(400, "BadRequest", "The filter '%s' is not supported." % clause)
        return json_response({"value": [self.definition_json(scope, r) for r in roles]})

    def get_definition(self, req, scope, guid, sub=None):
        role = ROLES_BY_GUID.get(guid.lower())
        if role is None:
            raise ApiError(404, "RoleDefinitionDoesNotExist", "The specified role definition with ID '%s' does not "
                           "exist." % guid)
        return json_response(self.definition_json(scope, role))

    # ----------------------------------------------------------------------------------- assignments
    def _record(self, name, scope, role_def_id, principal_id, created_by):
        return {"name": name, "scope": scope, "roleDefinitionId": role_def_id, "principalId": principal_id.lower(),
                "principalType": self.app.world.principal_type(principal_id), "created": now(),
                "createdBy": created_by}

    @staticmethod
    def assignment_json(ra):
        return {"id": "%s/providers/Microsoft.Authorization/roleAssignments/%s" % (ra["scope"], ra["name"]),
                "type": "Microsoft.Authorization/roleAssignments", "name": ra["name"],
                "properties": {"roleDefinitionId": ra["roleDefinitionId"], "principalId": ra["principalId"],
                               "principalType": ra["principalType"], "scope": ra["scope"], "condition": None,
                               "conditionVersion": None, "createdOn": iso(ra["created"]),
                               "updatedOn": iso(ra["created"]), "createdBy": ra.get("createdBy"),
                               "updatedBy": ra.get("createdBy"), "delegatedManagedIdentityResourceId": None,
                               "description": None}}

    def list_assignments(self, req, scope, sub=None):
        scope = scope or "/"
        authorize(self.app, req, "Microsoft.Authorization/roleAssignments/read", scope)
        flt = (req.q("$filter") or "").strip()
        at_scope, principal = False, None
        for clause in [c.strip() for c in re.split(r"\s+and\s+", flt, flags=re.I) if c.strip()]:
            m = re.fullmatch(r"(?:principalId\s+eq\s+'([^']*)'|assignedTo\('([^']*)'\))", clause, re.I)
            if clause.lower() == "atscope()":
                at_scope = True
            elif m:
                principal = (m.group(1) or m.group(2)).lower()
            else:
                raise ApiError(400, "BadRequest", "The filter '%s' is not supported. Supported: atScope(), "
                               "principalId eq '{id}', assignedTo('{id}')." % clause)
        with self.app.state.lock:
            items = list(self.app.state.data["role_assignments"].values())
        out = []
        for ra in items:
            above = scope_covers(ra["scope"], scope)
            below = scope_covers(scope, ra["scope"])
            if at_scope and not above:
                continue
            if not at_scope and not (above or below):
                continue
            if principal and ra["principalId"] != principal:
                continue
            out.append(self.assignment_json(ra))
        return json_response({"value": out})

    def get_assignment(self, req, scope, name, sub=None):
        authorize(self.app, req, "Microsoft.Authorization/roleAssignments/read", scope or "/")
        ra = self.app.state.data["role_assignments"].get(name.lower())
        if ra is None or norm_id(ra["scope"]) != norm_id(scope or "/"):
            raise ApiError(404, "RoleAssignmentNotFound", "The role assignment '%s' is not found." % name)
        return json_response(self.assignment_json(ra))

    def put_assignment(self, req, scope, name, sub=None):
        scope = scope or "/"
        authorize(self.app, req, "Microsoft.Authorization/roleAssignments/write", scope)
        try:
            uuid.UUID(name)
        except ValueError:
            raise ApiError(400, "InvalidRoleAssignmentId", "The role assignment ID '%s' is not valid. The role "
                           "assignment ID must be a GUID." % name)
        props = (req.json() or {}).get("properties")
        if not isinstance(props, dict):
            raise ApiError(400, "InvalidRequestContent", "The request content must have 'properties'.")
        role_def_id, principal = props.get("roleDefinitionId"), str(props.get("principalId") or "").lower()
        if not role_def_id or role_guid_from_id(role_def_id) not in ROLES_BY_GUID:
            raise ApiError(400, "RoleDefinitionDoesNotExist", "The specified role definition with ID '%s' does not "
                           "exist." % role_guid_from_id(role_def_id or ""))
        if principal not in self.app.world.principals:
            raise ApiError(400, "PrincipalNotFound", "Principal %s does not exist in the directory %s. Check that "
                           "you have the correct principal ID. If you are creating this principal and then "
                           "immediately assigning a role, this error might be related to a replication delay."
                           % (principal.replace("-", ""), self.app.world.tenant_id))
        if not self.app.resource_exists(scope):
            raise ApiError(404, "ResourceNotFound", "The scope '%s' does not exist." % scope)
        guid = role_guid_from_id(role_def_id)
        with self.app.state.tx() as data:
            existing = data["role_assignments"].get(name.lower())
            if existing is not None and (norm_id(existing["scope"]) != norm_id(scope) or
                                         existing["principalId"] != principal or
                                         role_guid_from_id(existing["roleDefinitionId"]) != guid):
                raise ApiError(400, "RoleAssignmentUpdateNotPermitted", "Tenant ID, application ID, principal ID, "
                               "and scope are not allowed to be updated.")
            for ra in data["role_assignments"].values():
                if norm_id(ra["scope"]) == norm_id(scope) and ra["principalId"] == principal and \
                        role_guid_from_id(ra["roleDefinitionId"]) == guid:
                    raise ApiError(409, "RoleAssignmentExists", "The role assignment already exists.")
            ra = self._record(name.lower(), scope, self.role_id(sub or self.app.world.default_subscription, guid),
                              principal, req.principal)
            data["role_assignments"][ra["name"]] = ra
        return json_response(self.assignment_json(ra), 201)

    def delete_assignment(self, req, scope, name, sub=None):
        authorize(self.app, req, "Microsoft.Authorization/roleAssignments/delete", scope or "/")
        with self.app.state.tx() as data:
            ra = data["role_assignments"].get(name.lower())
            if ra is None or norm_id(ra["scope"]) != norm_id(scope or "/"):
                return empty_response(204)
            del data["role_assignments"][name.lower()]
        return json_response(self.assignment_json(ra))
