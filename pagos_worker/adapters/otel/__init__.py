"""Tracing with OpenTelemetry: the command's span (`OtelTracer`), the gateway's and the publication's
(wrappers of those ports), and the SDK set up to export over OTLP/HTTP. `bootstrap` imports this only
when an endpoint is configured: without one, the SDK is never loaded."""
