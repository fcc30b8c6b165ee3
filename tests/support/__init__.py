"""What tests and benchmarks share: the app as a real process, a kube-proxy-like balancer, the rendered
manifests and the real browser. Test modules import from here, never from each other."""
