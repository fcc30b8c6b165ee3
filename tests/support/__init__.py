"""What tests and benchmarks share. Test modules and bench/ modules import from here, never from each other;
both run from the repository root (pytest, `python -m bench.bench_x`), so `tests.support` imports as it is.
tests/conftest.py holds only fixtures.

- paths: where things are: REPO, the MNIST slice, the style slice, the shipped model, the browser's canvas.
- drawing: digits drawn as the Sketchpad sends them (draw_digit, browser_png, drawn_canvases), drawings that are
  no digit (STAR, HASH: strokes, painted by paint), and PNG files Pillow would not write (png_file,
  huge_png_header).
- server: the app as a real process on a free port (run_app, stop_app, free_port), its request log and its
  /metrics (logged_requests, metric_families, metric_samples).
- gradio_api: Gradio's API as programs call it: the Sketchpad's value (sketchpad_value, sketch,
  uploaded_sketch), and the HTTP flow (upload, call_predict, read_events, predict_http, predict_async).
- load: many clients at once over the HTTP flow (load, latencies), as tests/test_load.py and the
  benchmarks use it.
- process: a process's CPU time, memory and threads, read from /proc.
- manifests: the Kustomize overlays rendered by kubectl, the base as written, and the app's container in them.
- balancer: a TCP balancer that picks pods as kube-proxy does for the Service.
- replicas: replicas of the app behind that balancer, with the kubelet's and a rollout's part played.
- caller: a gradio_client user as a process of its own, connecting from an address of its own.
- browser: the app in headless Chromium, drawing on the Sketchpad with the mouse.
- screenshot: the README's screenshot, stamped with the sha256 of the model it shows.
- networks: untrained networks of this project's shape, set up to behave in one known way.
- queue_app: python -m app with its Gradio queue altered, for the tests that cannot wait for Gradio to fail.
- table: the benchmarks' results as a Markdown table.
- azureml_definitions: the Azure ML YAML as the tests read it; azureml_run: azureml/run_pipeline.py and its
  package imported as the script finds them; fake_mlclient: a stand-in for MLClient that records each call.
"""
