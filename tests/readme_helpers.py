"""README.rst as its reader meets it: sections, the literal blocks in them, and the
shell commands of those blocks, for the tests that run what it says (test_readme.py,
test_readme_walk.py). They read the text, never a copy of it, so an edit of README that
breaks an example breaks a test.

The one liberty they take: README names the fixed ports of conf/webqq.ini (18080,
18443, 18765, 8080); the tests run on free ports and rewrite those numbers
(``on_ports``), since a fixed port may be taken on the machine that runs the suite.
"""
import re
import shlex
import socket
import textwrap
from pathlib import Path
from typing import Dict, List

README = Path(__file__).resolve().parent.parent / "README.rst"


def sections() -> Dict[str, str]:
    """README's top-level sections by title (a line underlined with ``=``)."""
    lines = README.read_text(encoding="utf-8").splitlines()
    found: Dict[str, List[str]] = {}
    current = None
    for number, line in enumerate(lines):
        following = lines[number + 1] if number + 1 < len(lines) else ""
        if line.strip() and re.fullmatch(r"=+", following) and len(following) >= len(line):
            current = line.strip()
            found[current] = []
        elif current is not None and not re.fullmatch(r"=+", line):
            found[current].append(line)
    return {title: "\n".join(body) for title, body in found.items()}


def section(title: str) -> str:
    return sections()[title]


def literal_blocks(text: str) -> List[str]:
    """The literal blocks of ``text`` (the indented lines after a paragraph ending in
    ``::``), dedented, in order."""
    lines = text.splitlines()
    blocks = []
    number = 0
    while number < len(lines):
        if not lines[number].rstrip().endswith("::"):
            number += 1
            continue
        number += 1
        block: List[str] = []
        while number < len(lines) and (not lines[number].strip()
                                       or lines[number].startswith((" ", "\t"))):
            block.append(lines[number])
            number += 1
        blocks.append(textwrap.dedent("\n".join(block)).strip("\n"))
    return blocks


def python_blocks(text: str) -> List[str]:
    """The literal blocks of ``text`` that are Python programs (they start with an
    import)."""
    return [block for block in literal_blocks(text)
            if block.startswith(("import ", "from "))]


def commands(block: str) -> List[List[str]]:
    """The shell commands of a literal block, as argument lists: lines joined at a
    trailing backslash, comments dropped, ``A && B`` split into two commands."""
    joined = re.sub(r"\\\n\s*", " ", block)
    found = []
    for line in joined.splitlines():
        words = shlex.split(line, comments=True)
        while words:
            end = words.index("&&") if "&&" in words else len(words)
            found.append(words[:end])
            words = words[end + 1:]
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def on_ports(text: str, ports: Dict[int, int]) -> str:
    """``text`` with each of README's fixed port numbers replaced by the test's."""
    for fixed, free in ports.items():
        text = re.sub(r"(?<!\d)%d(?!\d)" % fixed, str(free), text)
    return text
