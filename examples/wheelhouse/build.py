"""Builds the wheels of this wheelhouse from src/ (no network, no build backend: a wheel is a zip
with METADATA, WHEEL and RECORD). Run it after changing src/: python3 build.py"""
import base64
import hashlib
import pathlib
import zipfile

HERE = pathlib.Path(__file__).parent
PACKAGES = {"sr_wind": ("sr-wind", "1.0.0", "Logarithmic wind profile (scriptrunner demo package)")}

for module, (name, version, summary) in PACKAGES.items():
    dist = f"{module}-{version}.dist-info"
    files = {}
    for path in sorted((HERE / "src" / module).rglob("*.py")):
        files[path.relative_to(HERE / "src").as_posix()] = path.read_bytes()
    files[f"{dist}/METADATA"] = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: {summary}\nLicense: MIT\n".encode()
    files[f"{dist}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: scriptrunner-build\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    files[f"{dist}/RECORD"] = ("\n".join(record + [f"{dist}/RECORD,,"]) + "\n").encode()
    target = HERE / f"{module}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as wheel:
        for path, data in files.items():
            # A fixed date: the same sources give the same bytes.
            info = zipfile.ZipInfo(path, date_time=(2026, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            wheel.writestr(info, data)
    print(target.name)
