"""Helpers every ARM provider uses: caller authorization, resource-group checks, paging, ids."""
from urllib.parse import quote, urlencode

from .errors import ApiError
from .roles import has_permission
from .util import b64_token, b64_untoken, iso

SUB = r"/subscriptions/(?P<sub>[^/]+)"
RG = SUB + r"/resourceGroups/(?P<rg>[^/]+)"


def authorize(app, req, action, scope):
    """ARM's RBAC check for the caller: 403 AuthorizationFailed as ARM words it."""
    with app.state.lock:
        assignments = list(app.state.data["role_assignments"].values())
    if not has_permission(assignments, req.principal, action, scope):
        raise ApiError(403, "AuthorizationFailed", "The client '%s' with object id '%s' does not have authorization "
                       "to perform action '%s' over scope '%s' or the scope is invalid. If access was recently "
                       "granted, please refresh your credentials." % (req.claims.get("appid"), req.principal,
                                                                      action, scope))


def check_rg(app, sub, rg):
    if (sub.lower(), rg.lower()) not in app.world.resource_groups:
        raise ApiError(404, "ResourceGroupNotFound", "Resource group '%s' could not be found." % rg)
    return app.world.resource_groups[(sub.lower(), rg.lower())]["name"]


def page(app, req, items, page_size=None, render=None):
    """One page of `items` with an absolute nextLink carrying $skipToken (and the original query).
    With `render`, `items` are raw records (already sorted and filtered) and only the page's slice is
    rendered, so a page costs O(page) rendering, not O(all items)."""
    size = int(page_size or app.state.knobs["page_size"])
    token = req.q("$skipToken")
    try:
        start = b64_untoken(token) if token else 0
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "InvalidSkipToken", "The $skipToken '%s' is invalid." % token)
    chunk = items[start:start + size]
    if render is not None:
        chunk = [render(item) for item in chunk]
    body = {"value": chunk}
    if start + size < len(items):
        query = [(k, v) for k, v in req.query.items() if k.lower() != "$skiptoken"]
        query.append(("$skipToken", b64_token(start + size)))
        body["nextLink"] = "%s%s?%s" % (app.base_url, quote(req.path), urlencode(query, quote_via=quote, safe="$'"))
    return body


def system_data(created):
    return {"createdBy": None, "createdByType": None, "createdAt": iso(created), "lastModifiedBy": None,
            "lastModifiedByType": None, "lastModifiedAt": iso(created)}
