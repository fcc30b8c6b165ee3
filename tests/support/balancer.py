"""A TCP balancer that gives each new connection a pod the way kube-proxy does for a Service.

kube-proxy (iptables mode) picks a ready endpoint at random for every new TCP connection. With
`sessionAffinity: ClientIP`, the first connection from a client address picks at random and later ones
from that address keep its endpoint, until `sessionAffinityConfig.clientIP.timeoutSeconds` pass without
a new connection or the endpoint leaves the Service. Established connections are never moved: a pod that
stops being ready keeps serving the connections it has.

The balancer reads those two fields from the Service as rendered from an overlay, so a manifest that
loses its affinity changes what the tests see. Endpoints are the replicas' (host, port); the test plays
the kubelet and the endpoint controller by marking them ready or not.

    balancer = Balancer(service_spec, [("127.0.0.1", 8001), ("127.0.0.1", 8002)]).start()
    httpx.get(balancer.url + "/health")   # connect from 127.0.0.N to be another client
"""

import asyncio
import random
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

Endpoint = tuple[str, int]


@dataclass
class Affinity:
    """What the Service's spec says about keeping a client on one endpoint."""

    client_ip: bool
    timeout_seconds: float

    @classmethod
    def of(cls, service_spec: dict) -> "Affinity":
        client_ip = service_spec.get("sessionAffinity", "None") == "ClientIP"
        config = service_spec.get("sessionAffinityConfig", {}).get("clientIP", {})
        return cls(client_ip, float(config.get("timeoutSeconds", 10800)))  # Kubernetes' default: 3 hours


@dataclass
class Balancer:
    service_spec: dict
    endpoints: list[Endpoint]
    seed: int = 0
    ready: set[Endpoint] = field(init=False)  # the endpoints that get new connections
    connections: Counter = field(init=False)  # (client address, endpoint) -> connections made

    def __post_init__(self):
        self.affinity = Affinity.of(self.service_spec)
        self.ready = set(self.endpoints)
        self.connections = Counter()
        self._random = random.Random(self.seed)
        self._pinned: dict[str, tuple[Endpoint, float]] = {}  # client address -> (endpoint, last connection)
        self._open: set[asyncio.StreamWriter] = set()  # the clients' side of every relayed connection
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="balancer")

    def start(self) -> "Balancer":
        sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(sock), self._loop).result(timeout=10)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _close(self) -> None:
        self._server.close()
        for writer in self._open:
            writer.close()  # the relays see their connections end, and return
        relays = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        if relays:
            await asyncio.wait(relays, timeout=5)

    def set_ready(self, endpoint: Endpoint, ready: bool) -> Counter:
        """The endpoint controller's view: only ready endpoints get new connections. Returns the connections
        made until this moment."""
        with self._lock:
            (self.ready.add if ready else self.ready.discard)(endpoint)
            return Counter(self.connections)

    def pinned(self, client: str) -> Endpoint | None:
        """The endpoint `client`'s next connection goes to, if its affinity holds one."""
        with self._lock:
            entry = self._pinned.get(client)
            return entry[0] if entry else None

    def endpoints_of(self, client: str) -> set[Endpoint]:
        """Every endpoint `client` has been sent to."""
        with self._lock:
            return {endpoint for (address, endpoint) in self.connections if address == client}

    def choose(self, client: str) -> Endpoint | None:
        """The endpoint for a new connection from `client`, as kube-proxy chooses it."""
        with self._lock:
            ready = sorted(self.ready)
            if not ready:
                return None
            now = time.monotonic()
            if self.affinity.client_ip:
                entry = self._pinned.get(client)
                if entry and entry[0] in self.ready and now - entry[1] < self.affinity.timeout_seconds:
                    endpoint = entry[0]
                else:
                    endpoint = self._random.choice(ready)
                self._pinned[client] = (endpoint, now)
            else:
                endpoint = self._random.choice(ready)
            self.connections[client, endpoint] += 1
            return endpoint

    async def _serve(self, sock: socket.socket) -> None:
        self._server = await asyncio.start_server(self._relay, sock=sock)

    async def _relay(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        client = client_writer.get_extra_info("peername")[0]
        endpoint = self.choose(client)
        self._open.add(client_writer)
        try:
            if endpoint is None:
                return  # no ready endpoint: the connection is refused
            try:
                pod_reader, pod_writer = await asyncio.open_connection(*endpoint)
            except OSError:
                return  # a dead pod not yet out of the Service: refused
            pipes = [asyncio.ensure_future(self._pipe(client_reader, pod_writer)),
                     asyncio.ensure_future(self._pipe(pod_reader, client_writer))]
            await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
            pod_writer.close()  # one side ended (or the pod died): end both, as a reset would
            client_writer.close()
            await asyncio.gather(*pipes)
        finally:
            client_writer.close()
            self._open.discard(client_writer)

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()
