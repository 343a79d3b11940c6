"""Worker-side functions and inputs of benchmarks/bench_workloads.py.

Every backend reaches these functions by module name: interpool's workers and
the process pools (fork, forkserver, spawn, loky) import this module from the
benchmarks directory on sys.path, as a user's own module would be imported.
The libraries are imported inside the functions, so that a worker pays for the
imports of the workload it runs (the start-up the benchmark reports apart) and
nothing else. The leading underscore keeps `make bench` from running it.

Inputs are made in the caller from a seed, so every backend gets the same data.
"""

import os
import random
import sys
import time
from _thread import get_ident

from _executor_tasks import rendezvous

# ---------------------------------------------------------------------------
# Per-worker state: the libraries and what each workload builds once
# ---------------------------------------------------------------------------

_state = {}

JINJA_TEMPLATE = """\
<html><head><title>{{ title|e }}</title></head><body>
<h1>{{ title|title }}</h1>
<p>Customer: {{ user.name }} &lt;{{ user.email|lower }}&gt;, {{ user.city }}</p>
<table>
{% for item in items %}
  <tr class="{{ loop.cycle('odd', 'even') }}">
    <td>{{ loop.index }}</td><td>{{ item.name|capitalize }}</td>
    <td>{{ '%.2f'|format(item.price) }}</td>
    <td>{% for tag in item.tags|sort %}<span>{{ tag|upper }}</span>{% if not loop.last %}, {% endif %}{% endfor %}</td>
    <td>{% if item.price > 50 %}expensive{% elif item.price > 10 %}fair{% else %}cheap{% endif %}</td>
  </tr>
{% endfor %}
</table>
<p>Total: {{ '%.2f'|format(items|sum(attribute='price')) }}; {{ items|length }} items;
scores {{ scores|join(', ') }}</p>
</body></html>
"""


def _jinja_template():
    t = _state.get("jinja")
    if t is None:
        import jinja2

        env = jinja2.Environment(autoescape=True)
        t = _state["jinja"] = env.from_string(JINJA_TEMPLATE)
    return t


def _yaml():
    y = _state.get("yaml")
    if y is None:
        import yaml

        y = _state["yaml"] = yaml
    return y


# The library each workload imports (warm-up loads it, and builds its state).
LIBRARIES = {
    "jinja2": "jinja2",
    "markdown": "markdown",
    "ast": "ast",
    "regex": "re",
    "yaml": "yaml",
    "tomlkit": "tomlkit",
    "sympy": "sympy",
}


def warm(workload, directory, parties):
    """Start-up task, one per worker: imports the workload's library and builds
    its state (Jinja2's compiled template), then meets the other workers, so that
    every worker has done so once all of these have returned."""
    __import__(LIBRARIES[workload])
    if workload == "jinja2":
        _jinja_template()
    elif workload == "sympy":
        import sympy  # noqa: F401  (the symbols' module, and sympy's caches)
    rendezvous(directory, parties)
    return os.getpid(), get_ident()


def clear_caches(workload):
    """What a workload memoises on its inputs, forgotten (in the caller before a
    fork pool starts: fork would hand the workers the sequential run's results)."""
    if workload == "sympy" and "sympy" in sys.modules:
        from sympy.core.cache import clear_cache

        clear_cache()


# ---------------------------------------------------------------------------
# The real workloads: one function each, mapped over the inputs
# ---------------------------------------------------------------------------


def jinja_render(ctx):
    return len(_jinja_template().render(**ctx))


def markdown_render(text):
    import markdown

    return len(markdown.markdown(text, extensions=["tables", "fenced_code"]))


def ast_walk(path):
    import ast

    with open(path, "rb") as f:
        source = f.read()
    try:
        tree = ast.parse(source, filename=path)
    except (SyntaxError, ValueError):
        return 0
    names = 0
    for node in ast.walk(tree):
        if isinstance(node, (ast.Name, ast.Attribute, ast.FunctionDef, ast.ClassDef)):
            names += 1
    return names


def regex_parse(block):
    """Parses a block of access-log lines: status counts, bytes, slow requests."""
    import re

    pattern = _state.get("regex")
    if pattern is None:
        pattern = _state["regex"] = re.compile(
            r'(?P<ip>\d+\.\d+\.\d+\.\d+) - (?P<user>\S+) \[(?P<when>[^\]]+)\] '
            r'"(?P<method>[A-Z]+) (?P<path>\S+) HTTP/1\.[01]" (?P<status>\d{3}) (?P<size>\d+) '
            r'"(?P<agent>[^"]*)" (?P<ms>\d+)ms')
    status = {}
    size = slow = 0
    for m in pattern.finditer(block):
        s = m.group("status")
        status[s] = status.get(s, 0) + 1
        size += int(m.group("size"))
        if int(m.group("ms")) > 500 and m.group("path").startswith("/api/"):
            slow += 1
    return status, size, slow


def yaml_roundtrip(text):
    """Loads and dumps a YAML document with PyYAML's pure-Python SafeLoader/SafeDumper."""
    yaml = _yaml()
    data = yaml.load(text, Loader=yaml.SafeLoader)
    return len(yaml.dump(data, Dumper=yaml.SafeDumper))


def tomlkit_roundtrip(text):
    import tomlkit

    doc = tomlkit.parse(text)
    doc["meta"]["checked"] = True
    return len(tomlkit.dumps(doc))


def sympy_task(i):
    """Expand, factor and integrate: symbolic algebra, a few ms to 100 ms a task."""
    import sympy

    x, y = sympy.symbols("x y")
    k = 2 + i % 5
    e = sympy.expand((x + y + i) ** k * (x - 2 * y) ** 2)
    f = sympy.factor(e)
    g = sympy.integrate(sympy.sin(x) ** (1 + i % 3) * sympy.cos(x) ** (i % 4) + x ** k * sympy.exp(x), x)
    return len(str(f)) + len(str(g))


# ---------------------------------------------------------------------------
# Inputs (made in the caller)
# ---------------------------------------------------------------------------

_WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november "
          "oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu").split()


def contexts(n, seed=1, items=50):
    """n Jinja2-like contexts: dicts of lists of dicts of str, float and list."""
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        out.append({
            "title": f"order {i} for " + " ".join(rnd.choices(_WORDS, k=3)),
            "user": {"name": " ".join(rnd.choices(_WORDS, k=2)).title(),
                     "email": f"{rnd.choice(_WORDS)}.{i}@Example.COM", "city": rnd.choice(_WORDS)},
            "items": [{"name": " ".join(rnd.choices(_WORDS, k=2)), "price": round(rnd.uniform(1, 100), 2),
                       "tags": rnd.choices(_WORDS, k=3)} for _ in range(items)],
            "scores": [round(rnd.random(), 3) for _ in range(5)],
        })
    return out


def markdown_docs(n, seed=2):
    rnd = random.Random(seed)
    docs = []
    for i in range(n):
        parts = [f"# Document {i}\n"]
        for s in range(6):
            parts.append(f"## Section {s}: {' '.join(rnd.choices(_WORDS, k=3))}\n")
            for _ in range(3):
                words = rnd.choices(_WORDS, k=60)
                words[3] = f"**{words[3]}**"
                words[9] = f"*{words[9]}*"
                words[15] = f"`{words[15]}`"
                words[20] = f"[{words[20]}](https://example.com/{words[21]})"
                parts.append(" ".join(words) + "\n")
            parts.append("\n".join(f"- {' '.join(rnd.choices(_WORDS, k=6))}" for _ in range(5)) + "\n")
            parts.append("| a | b | c |\n|---|---|---|\n" + "\n".join(
                f"| {rnd.choice(_WORDS)} | {rnd.randint(0, 999)} | {rnd.random():.3f} |" for _ in range(4)) + "\n")
            parts.append("```python\nprint(%r)\n```\n" % rnd.choice(_WORDS))
        docs.append("\n".join(parts))
    return docs


def stdlib_files(n):
    """The first n .py files of the standard library (sorted, so always the same)."""
    import sysconfig

    root = sysconfig.get_paths()["stdlib"]
    found = []
    for d, dirs, files in os.walk(root):
        dirs[:] = sorted(x for x in dirs if x not in ("site-packages", "test", "idlelib", "__pycache__"))
        found += [os.path.join(d, f) for f in sorted(files) if f.endswith(".py")]
    return found[:n]


def log_line(rnd, i):
    path = rnd.choice(("/api/", "/static/", "/")) + "/".join(rnd.choices(_WORDS, k=2))
    return (f"10.{rnd.randint(0, 255)}.{rnd.randint(0, 255)}.{rnd.randint(1, 254)} - "
            f"{rnd.choice(_WORDS)} [06/Dec/2026:{i % 24:02d}:{i % 60:02d}:{i % 59:02d} +0000] "
            f'"{rnd.choice(("GET", "POST", "PUT"))} {path} HTTP/1.1" '
            f"{rnd.choice((200, 200, 200, 304, 404, 500))} {rnd.randint(100, 99999)} "
            f'"Mozilla/5.0 ({rnd.choice(_WORDS)})" {rnd.randint(1, 900)}ms')


def log_blocks(n, lines_per_block=2000, seed=3):
    rnd = random.Random(seed)
    return ["\n".join(log_line(rnd, b * lines_per_block + i) for i in range(lines_per_block))
            for b in range(n)]


def lines(n, seed=4):
    """n lines of about 100 characters (the many-medium-inputs row)."""
    rnd = random.Random(seed)
    return [log_line(rnd, i)[:100] for i in range(n)]


def yaml_docs(n, seed=5):
    rnd = random.Random(seed)
    docs = []
    for i in range(n):
        body = [f"name: service-{i}", "version: 1.%d.%d" % (rnd.randint(0, 9), rnd.randint(0, 99)),
                "enabled: true", "servers:"]
        for s in range(12):
            body += [f"  - host: {rnd.choice(_WORDS)}-{s}.example.com", f"    port: {rnd.randint(1000, 9999)}",
                     f"    weight: {rnd.random():.3f}",
                     f"    tags: [{', '.join(rnd.choices(_WORDS, k=3))}]",
                     "    limits: {cpu: %d, memory: %dMi}" % (rnd.randint(1, 8), rnd.randint(64, 4096))]
        body += ["description: >", "  " + " ".join(rnd.choices(_WORDS, k=30))]
        docs.append("\n".join(body) + "\n")
    return docs


def toml_docs(n, seed=6):
    rnd = random.Random(seed)
    docs = []
    for i in range(n):
        body = [f'title = "config {i}"', "", "[meta]", f'owner = "{rnd.choice(_WORDS)}"',
                f"created = 2026-12-{1 + i % 28:02d}T10:00:00Z", ""]
        for s in range(8):
            body += [f"[servers.{rnd.choice(_WORDS)}{s}]", f'ip = "10.0.{s}.{rnd.randint(1, 254)}"',
                     f"ports = [{', '.join(str(rnd.randint(1000, 9999)) for _ in range(4))}]",
                     f"weight = {rnd.random():.4f}", f"enabled = {str(rnd.random() > 0.5).lower()}", ""]
        docs.append("\n".join(body))
    return docs


# ---------------------------------------------------------------------------
# Data movement: the work is trivial, the data is what costs
# ---------------------------------------------------------------------------


def line_length(line):
    return len(line)


def make_rows(i, n=5000):
    """A large result: n (int, float, str) tuples."""
    return [(i, j, j * 0.5, f"row {j}") for j in range(n)]


class Event:
    """A record with no native form (it crosses pickled): a timestamp, a
    number, a name, and the tags that every event of a batch holds."""

    __slots__ = ("when", "value", "name", "tags")

    def __init__(self, when, value, name, tags):
        self.when, self.value, self.name, self.tags = when, value, name, tags

    def __eq__(self, other):
        return type(other) is Event and all(getattr(self, a) == getattr(other, a) for a in self.__slots__)

    def __reduce__(self):
        return Event, (self.when, self.value, self.name, self.tags)


def make_events(i, n=1000):
    """A result of objects that pickle: n Events with a datetime each."""
    import datetime

    start = datetime.datetime(2024, 12, 6, tzinfo=datetime.timezone.utc) + datetime.timedelta(days=i)
    tags = ("batch", str(i))
    return [Event(start + datetime.timedelta(seconds=j), j * 0.5, f"event {j}", tags) for j in range(n)]


def nbytes(data):
    return len(data)


def context_items(ctx):
    return len(ctx["items"])


# ---------------------------------------------------------------------------
# Short tasks, for the cost of waiting
# ---------------------------------------------------------------------------


def loop(n):
    """CPU work of n loop iterations (about 25 ns each)."""
    s = 0
    for i in range(n):
        s += i
    return s


def cpu_hog(seconds):
    """A CPU hog's body: spins for `seconds` of wall time (run as its own process)."""
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        n += 1
    return n
