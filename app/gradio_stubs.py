"""Gradio rewrites its own type stubs each time it is imported; this stops that, for a faster start.

For each of its ~80 component classes, `import gradio` reads the class's source, parses it and its .pyi
stub, renders the stub again and writes it back if it differs (`create_or_modify_pyi` in
gradio/component_meta.py): half of the import's time, with no setting to turn it off. The stubs are for
editors; serving never reads them. `skip_stub_rewriting()` replaces that function with one that does
nothing, as gradio.component_meta loads, for the Gradio versions known to need it. Call it before anything
imports Gradio (app/__main__.py does).
"""

import importlib.abc
import importlib.machinery
import importlib.util
import json
import sys
from pathlib import Path

STUB_REWRITING_GRADIO = ("6.31.",)  # versions checked; requirements.txt pins one (tests/test_server.py)


class NoStubRewriting(importlib.abc.MetaPathFinder):
    """Finds gradio.component_meta as usual, and loads it with `create_or_modify_pyi` doing nothing."""

    def find_spec(self, name, path, target=None):
        if name != "gradio.component_meta":
            return None
        sys.meta_path.remove(self)  # once is enough
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        load = spec.loader.exec_module

        def exec_module(module):
            load(module)
            module.create_or_modify_pyi = lambda component_class, class_name, events: None

        spec.loader.exec_module = exec_module
        return spec


def gradio_version() -> str:
    """The installed Gradio's version, from its package.json (importlib.metadata is slower to load)."""
    spec = importlib.util.find_spec("gradio")
    try:
        return json.loads((Path(spec.submodule_search_locations[0]) / "package.json").read_text())["version"]
    except (AttributeError, TypeError, IndexError, OSError, ValueError, KeyError):
        return ""


def skip_stub_rewriting() -> bool:
    """Make the coming `import gradio` skip its stub rewriting; False if Gradio is loaded or not a known version."""
    if "gradio" in sys.modules or not gradio_version().startswith(STUB_REWRITING_GRADIO):
        return False
    sys.meta_path.insert(0, NoStubRewriting())
    return True
