"""The benchmarks' results as a Markdown table, as docs/benchmarks.md shows them."""


def markdown_table(header: list[str], rows: list) -> str:
    """A table of `rows` (each a sequence of cells, as text) under `header`."""
    lines = [header, ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines)
