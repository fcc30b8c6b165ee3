"""Replicas of the app behind a Service: real `python -m app` processes and a kube-proxy-like balancer.

The test plays the rest of Kubernetes:
- the kubelet and the endpoint controller: a replica whose process has exited (a pod that died) leaves
  the Service at the next check, every KUBELET_SECONDS, as its pod turns not ready;
- the Deployment: each replica runs with the local overlay's settings (FEEDBACK_DIR aside), then `env`;
- a rolling update's termination (`terminate`): the pod leaves the Service at once, its preStop sleep
  runs while it still serves the connections it has, then SIGTERM, and the process drains and exits.

    with Replicas(tmp_path, render("local")[1]["Service"]["spec"]) as replicas:
        httpx.get(replicas.url + "/health")
"""

import signal
import subprocess
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.support.balancer import Balancer, Endpoint
from tests.support.manifests import pod_settings
from tests.support.server import run_app

KUBELET_SECONDS = 1.0  # the kubelet relists containers every second; the Service follows within about as long


class Replicas:
    def __init__(self, tmp_path: Path, service_spec: dict, count: int = 2, seed: int = 0, **env):
        self.tmp_path, self.service_spec, self.count, self.seed = tmp_path, service_spec, count, seed
        self.env = {**pod_settings("local"), **env}

    def __enter__(self) -> "Replicas":
        def start(index: int) -> subprocess.Popen:
            folder = self.tmp_path / f"pod{index}"
            folder.mkdir()
            return run_app(folder, **self.env)[0]

        with ThreadPoolExecutor(self.count) as pool:
            processes = list(pool.map(start, range(self.count)))
        self.processes: dict[Endpoint, subprocess.Popen] = {("127.0.0.1", p.port): p for p in processes}
        self.balancer = Balancer(self.service_spec, list(self.processes), seed=self.seed).start()
        self.url = self.balancer.url
        self._stopping = threading.Event()
        self._kubelet = threading.Thread(target=self._remove_dead_pods, daemon=True, name="kubelet")
        self._kubelet.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stopping.set()
        self._kubelet.join(timeout=10)
        self.balancer.stop()
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=30)

    def _remove_dead_pods(self) -> None:
        while not self._stopping.wait(KUBELET_SECONDS):
            for endpoint, process in self.processes.items():
                if process.poll() is not None:
                    self.balancer.set_ready(endpoint, False)

    def log(self, endpoint: Endpoint) -> str:
        return self.processes[endpoint].log.read_text()

    def kill(self, endpoint: Endpoint) -> None:
        """The pod dies at once (a crash, the OOM killer, a lost node): SIGKILL, no drain."""
        self.processes[endpoint].kill()

    def terminate(self, endpoint: Endpoint, pre_stop_seconds: float) -> tuple[int, float, Counter]:
        """Terminate the pod as a rollout does. Returns its exit status, the seconds from SIGTERM to its exit,
        and the balancer's connections until the pod left the Service."""
        before = self.balancer.set_ready(endpoint, False)  # terminating: no new connections, the open ones go on
        time.sleep(pre_stop_seconds)
        process = self.processes[endpoint]
        process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        status = process.wait(timeout=120)
        return status, time.monotonic() - signalled, before
