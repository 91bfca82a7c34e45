"""Every relative link in README.md and docs/*.md leads somewhere, in the checkout and in the
sdist (whose README is what a reader of the unpacked source, or of PyPI's page, follows).

A link is `[text](target)` outside code; a target with a URL scheme is left alone. The file
must exist; a `#fragment` must be the GitHub anchor of one of its headings.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", re.MULTILINE)
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def _prose(markdown: str) -> str:
    """The text without fenced code blocks and inline code spans."""
    return INLINE_CODE.sub("", FENCE.sub("", markdown))


def _anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, markup and punctuation other than '-' and '_'
    dropped, spaces to '-'; a repeated heading gets -1, -2, ..."""
    anchors: set[str] = set()
    for heading in HEADING.findall(_prose_keep_headings(markdown)):
        text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link: its text
        slug = re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")
        candidate, n = slug, 0
        while candidate in anchors:
            n += 1
            candidate = f"{slug}-{n}"
        anchors.add(candidate)
    return anchors


def _prose_keep_headings(markdown: str) -> str:
    """Fenced blocks removed (a '# comment' in a shell block is no heading), inline code
    kept as its text (a heading's `code` counts in its anchor)."""
    return FENCE.sub("", markdown).replace("`", "")


def documents(root: Path) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def broken_links(root: Path) -> Iterator[str]:
    """'file: target (why)' for each relative link under ``root`` that leads nowhere."""
    for document in documents(root):
        for target in LINK.findall(_prose(document.read_text(encoding="utf-8"))):
            if SCHEME.match(target):
                continue
            path_part, _, fragment = target.partition("#")
            linked = (document.parent / path_part).resolve() if path_part else document
            where = f"{document.relative_to(root)}: {target}"
            if not linked.exists():
                yield f"{where} (no such file)"
            elif fragment and linked.is_file():
                if fragment not in _anchors(linked.read_text(encoding="utf-8")):
                    yield f"{where} (no heading with that anchor)"
            elif fragment:
                yield f"{where} (an anchor into a folder)"


def test_the_link_checker_sees_links_and_anchors(tmp_path: Path) -> None:
    """The checker itself: a broken file, a broken anchor and links inside code."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A page\n\n## Why `this` works, mostly\n")
    (tmp_path / "README.md").write_text(
        "[ok](docs/a.md) [ok](docs/a.md#why-this-works-mostly) [ok](#top-part)\n"
        "# Top part\n[web](https://example.invalid/x) `[code](missing.md)`\n"
        "```sh\n[fenced](missing.md)\n```\n"
        "[bad](docs/b.md) [bad](docs/a.md#nope)\n"
    )
    assert list(broken_links(tmp_path)) == [
        "README.md: docs/b.md (no such file)",
        "README.md: docs/a.md#nope (no heading with that anchor)",
    ]


def test_every_relative_link_resolves_in_the_checkout() -> None:
    assert list(broken_links(ROOT)) == []


def _checkout_files() -> list[str]:
    """What a fresh clone holds (tracked files, and new ones not ignored)."""
    done = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip("not a git checkout")
    return [name for name in done.stdout.decode().split("\0") if name]


@pytest.fixture(scope="module")
def sdist_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sdist, built by setuptools' PEP 517 hook from a copy of the checkout (the
    checkout is left untouched), unpacked."""
    base = tmp_path_factory.mktemp("sdist")
    clone = base / "clone"
    for name in _checkout_files():
        source = ROOT / name
        if source.is_file():
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            (clone / name).write_bytes(source.read_bytes())
    dist = base / "dist"
    dist.mkdir()
    built = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from setuptools import build_meta;"
            " print(build_meta.build_sdist(sys.argv[1]))",
            str(dist),
        ],
        cwd=clone,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    archive = dist / built.stdout.strip().splitlines()[-1]
    with tarfile.open(archive) as tar:
        if hasattr(tarfile, "data_filter"):  # Python 3.10.12+: refuse links out, devices
            tar.extractall(base / "unpacked", filter="data")
        else:  # our own sdist, just built
            tar.extractall(base / "unpacked")
    (unpacked,) = (base / "unpacked").iterdir()
    return unpacked


def test_the_sdist_carries_the_docs(sdist_root: Path) -> None:
    expected = {path.relative_to(ROOT) for path in documents(ROOT)}
    assert {path.relative_to(sdist_root) for path in documents(sdist_root)} == expected


def test_every_relative_link_resolves_in_the_sdist(sdist_root: Path) -> None:
    assert list(broken_links(sdist_root)) == []


def test_the_startup_hook_names_a_page_that_exists() -> None:
    """The installed .pth file's comment sends a reader to a page of the docs."""
    comment = (ROOT / "startup" / "assume_provider_startup.pth").read_text().splitlines()[0]
    named = re.findall(r"docs/[\w.-]+\.md", comment)
    assert named, comment
    assert all((ROOT / name).is_file() for name in named)
