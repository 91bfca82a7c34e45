"""Build shim: ships the zero-code start-up files at the root of site-packages.

Metadata and options live in setup.cfg. setuptools has no option for files at the root of
the install, so:

* regular wheels (``pip install .``): ``build_py`` copies ``startup/*`` to the root of the
  build folder, which becomes the root of the wheel;
* editable wheels (``pip install -e .``): setuptools builds them without that folder, so
  ``editable_wheel`` adds the files to the finished wheel and rewrites its RECORD (pip
  uninstalls exactly what RECORD lists).

The file names sort after setuptools' ``__editable__*.pth``, so in an editable install the
package is importable by the time the hook line runs. ``startup/`` is listed in MANIFEST.in
so that wheels built from the sdist have it too.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import os
import shutil
import zipfile
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.editable_wheel import editable_wheel

HERE = Path(__file__).resolve().parent
STARTUP_FILES = sorted((HERE / "startup").glob("assume_provider_startup.*"))


class BuildPyWithStartupFiles(build_py):  # type: ignore[misc]
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable build lib is not what gets installed; see below
        for source in STARTUP_FILES:
            target = os.path.join(self.build_lib, source.name)
            shutil.copyfile(source, target)

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        outputs: list[str] = super().get_outputs(include_bytecode)
        if not getattr(self, "editable_mode", False):
            outputs += [os.path.join(self.build_lib, source.name) for source in STARTUP_FILES]
        return outputs


class EditableWheelWithStartupFiles(editable_wheel):  # type: ignore[misc]
    def run(self) -> None:
        super().run()
        for wheel in Path(self.dist_dir).glob("*.editable-*.whl"):
            add_to_wheel(wheel, STARTUP_FILES)


def add_to_wheel(wheel: Path, files: list[Path]) -> None:
    """Add ``files`` at the root of ``wheel`` and list them, with hashes, in its RECORD."""
    with zipfile.ZipFile(wheel) as archive:
        entries = [(info, archive.read(info)) for info in archive.infolist()]
    record_name = next(info.filename for info, _ in entries if info.filename.endswith("/RECORD"))
    added = {path.name: path.read_bytes() for path in files}
    kept = [(info, data) for info, data in entries if info.filename not in added]
    old_record = next(data for info, data in kept if info.filename == record_name).decode()

    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\n")
    for row in csv.reader(io.StringIO(old_record)):
        if row and row[0] not in added and row[0] != record_name:
            writer.writerow(row)
    for name, data in added.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        writer.writerow([name, f"sha256={digest}", str(len(data))])
    writer.writerow([record_name, "", ""])

    temporary = wheel.with_suffix(".tmp")
    with zipfile.ZipFile(temporary, "w", zipfile.ZIP_DEFLATED) as archive:
        for info, data in kept:
            if info.filename != record_name:
                archive.writestr(info, data)
        for name, data in added.items():
            archive.writestr(name, data)
        archive.writestr(record_name, record.getvalue())
    temporary.replace(wheel)


setup(
    cmdclass={
        "build_py": BuildPyWithStartupFiles,
        "editable_wheel": EditableWheelWithStartupFiles,
    }
)
