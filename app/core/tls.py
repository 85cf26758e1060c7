"""The one way storehooks verifies servers it connects to: the webhooks' receivers
(workers/transport.py) and the identity provider (app/auth/oidc.py)."""

import ssl

import certifi


def ssl_context(ca_bundle: str | None) -> ssl.SSLContext:
    """Certifi's roots plus STOREHOOKS_CA_BUNDLE; verification is never switched off."""
    context = ssl.create_default_context(cafile=certifi.where())
    if ca_bundle:
        context.load_verify_locations(cafile=ca_bundle)
    return context
