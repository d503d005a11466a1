"""tickactors: market-data WebSocket feeds on Trio that never lose data silently.

::

    import trio
    import tickactors
    from tickactors.venues import AllTick

    async def main() -> None:
        venue = AllTick(url="ws://127.0.0.1:8765/quote-b-ws-api", token="anything")
        async with tickactors.open_feed(venue) as feed:
            feed.subscribe("BTCUSDT", "EURUSD")
            async for tick in feed.ticks(kind=tickactors.TRADES):  # Tick values
                print(tick.symbol, tick.price)

    trio.run(main)

:func:`open_feed` opens a :class:`Feed` to a venue of :mod:`tickactors.venues`
(``AllTick``, ``Tradovate``). A feed yields :class:`Tick`, :class:`BookSnapshot` and
:class:`Quote` values of the stream kinds :data:`TRADES`, :data:`BOOK` and
:data:`QUOTES` (``feed.ticks(kind=...)`` one kind, typed precisely; ``feed.ticks()``
every kind, :data:`MarketData`), and :class:`HealthEvent` values (named by
:class:`EventName`); on a trading socket it keeps the user's account in sync
(``open_feed(sync=True)``, ``feed.account()``: :class:`SyncSnapshot` and
:class:`EntityEvent` values, :data:`AccountUpdate`); every error it raises on purpose is a
:class:`FeedError`. The sinks (:func:`open_jsonl_sink`, :func:`open_parquet_sink`,
:func:`open_nats_sink`, :func:`open_sink`) capture what
a feed delivers; :class:`FeedCollector` exposes a feed's counters to Prometheus. The
README's "Library" section and the scripts in ``examples/`` show each in use.
"""

from ._core.lanes import Policy as Policy
from ._errors import AuthenticationError as AuthenticationError
from ._errors import CapacityError as CapacityError
from ._errors import CaptchaRequiredError as CaptchaRequiredError
from ._errors import CertificateError as CertificateError
from ._errors import ConnectError as ConnectError
from ._errors import ConnectionLostError as ConnectionLostError
from ._errors import FeedClosedError as FeedClosedError
from ._errors import FeedError as FeedError
from ._errors import InvalidSymbolError as InvalidSymbolError
from ._errors import PermanentConnectError as PermanentConnectError
from ._errors import ProtocolError as ProtocolError
from ._errors import RequestTimeoutError as RequestTimeoutError
from ._errors import VenueRejectedError as VenueRejectedError
from ._errors import VenueShutdownError as VenueShutdownError
from ._feed.feed import Feed as Feed
from ._feed.feed import open_feed as open_feed
from ._feed.metrics import FeedCollector as FeedCollector
from ._net.batched import connect_batched as connect_batched
from ._net.token_source import IssuedToken as IssuedToken
from ._net.token_source import TokenSource as TokenSource
from ._net.transport import Transport as Transport
from ._net.transport import TransportClosed as TransportClosed
from ._net.transport import TransportFactory as TransportFactory
from ._net.transport import connect_websocket as connect_websocket
from ._secret import Secret as Secret
from ._values import BOOK as BOOK
from ._values import QUOTES as QUOTES
from ._values import TRADES as TRADES
from ._values import AccountUpdate as AccountUpdate
from ._values import BookLevel as BookLevel
from ._values import BookSnapshot as BookSnapshot
from ._values import EntityEvent as EntityEvent
from ._values import EventName as EventName
from ._values import HealthEvent as HealthEvent
from ._values import MarketData as MarketData
from ._values import Quote as Quote
from ._values import StreamKind as StreamKind
from ._values import SyncSnapshot as SyncSnapshot
from ._values import Tick as Tick
from ._version import __version__ as __version__
from .sinks import JsonlSink as JsonlSink
from .sinks import NatsSink as NatsSink
from .sinks import ParquetSink as ParquetSink
from .sinks import SinkError as SinkError
from .sinks import SinkSpecError as SinkSpecError
from .sinks import open_jsonl_sink as open_jsonl_sink
from .sinks import open_nats_sink as open_nats_sink
from .sinks import open_parquet_sink as open_parquet_sink
from .sinks import open_sink as open_sink

__all__ = [
    "BOOK",
    "QUOTES",
    "TRADES",
    "AccountUpdate",
    "AuthenticationError",
    "BookLevel",
    "BookSnapshot",
    "CapacityError",
    "CaptchaRequiredError",
    "CertificateError",
    "ConnectError",
    "ConnectionLostError",
    "EntityEvent",
    "EventName",
    "Feed",
    "FeedClosedError",
    "FeedCollector",
    "FeedError",
    "HealthEvent",
    "InvalidSymbolError",
    "IssuedToken",
    "JsonlSink",
    "MarketData",
    "NatsSink",
    "ParquetSink",
    "PermanentConnectError",
    "Policy",
    "ProtocolError",
    "Quote",
    "RequestTimeoutError",
    "Secret",
    "SinkError",
    "SinkSpecError",
    "StreamKind",
    "SyncSnapshot",
    "Tick",
    "TokenSource",
    "Transport",
    "TransportClosed",
    "TransportFactory",
    "VenueRejectedError",
    "VenueShutdownError",
    "connect_batched",
    "connect_websocket",
    "open_feed",
    "open_jsonl_sink",
    "open_nats_sink",
    "open_parquet_sink",
    "open_sink",
]
