"""The service's public contract: the messages other services exchange with it (`ProcesarPago` in,
`PagoExitoso`/`PagoFallido` out, dead letters). Entry points and adapters both speak it; it knows
only the domain and the application's commands."""
