"""``flinkops gateway``: one authenticated, authorizing, audited door to every deployment's Flink UI and REST API
(``config`` its settings, ``policy`` what a request may do, ``oidc`` OpenID Connect, ``server`` the proxy)."""
