"""A refusal by Camunda's authorization (403 AuthorizationException) reads as "not allowed" with
the engine's reason and how to get the grant; a 403 from anything else stays a credentials error."""

from __future__ import annotations

from modelops_mlc.engine import gateway
from modelops_mlc.errors import EngineAuthError

DENIED = ('{"type": "AuthorizationException", "message": "The user with id \'eve\' does not have \'CREATE\' '
          'permission on resource \'Deployment\'.", "userId": "eve"}')


def test_missing_grant_names_the_permission_and_the_groups() -> None:
    exc = gateway.engine_error(403, DENIED, what="deploy x.bpmn")
    assert isinstance(exc, EngineAuthError) and exc.exit_code == 6
    assert exc.message == ("deploy x.bpmn: not allowed: The user with id 'eve' does not have 'CREATE' permission on "
                           "resource 'Deployment'.")
    assert "mlc engine users add" in (exc.hint or "")


def test_other_403_is_a_credentials_error() -> None:
    exc = gateway.engine_error(403, "Forbidden by the proxy")
    assert "refused the credentials (403)" in exc.message and "MLC_ENGINE_AUTH" in (exc.hint or "")
