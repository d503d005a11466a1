"""The network layer: transports (trio-websocket, the batched wsproto reader), connecting
under one deadline, the WebSocket upgrade, frame scanning, and the token sources' interface.

It imports values, errors and secrets only; the actors above it use it through
:class:`~tickactors._net.transport.Transport` and its factories.
"""
