"""Writes the licences of every crate linked into the controller's binary under DIR.

Reads `cargo metadata` (resolved for the image's platform and the default features) on stdin,
walks the controller's normal (not dev, not build) dependencies, and for each crate copies
the licence files its package ships (LICENSE*, LICENCE*, COPYING*, NOTICE*, COPYRIGHT*, also
one directory down, where -sys crates keep the C library's) to DIR/crates/NAME-VERSION/, and
lists it in DIR/DEPENDENCIES.tsv: name, version, SPDX licence, repository, files copied. A
crate whose package ships no licence file gets the standard text of each licence its
Cargo.toml names (Debian's common-licenses; MIT's template with the crate's authors).

    cargo metadata --locked --format-version 1 --filter-platform TRIPLE | python3 image-licenses.py DIR
"""

import json
import os
import shutil
import sys

ROOT = "atmos-auth-controller"
PREFIXES = ("license", "licence", "copying", "notice", "copyright")
COMMON = "/usr/share/common-licenses"
MIT = """MIT License

Copyright (c) {holders}

Permission is hereby granted, free of charge, to any person obtaining a copy of this software
and associated documentation files (the "Software"), to deal in the Software without
restriction, including without limitation the rights to use, copy, modify, merge, publish,
distribute, sublicense, and/or sell copies of the Software, and to permit persons to whom the
Software is furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all copies or
substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING
BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND
NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM,
DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.
"""


def standard_texts(package, dest):
    """The standard texts of the licences `package` declares; the file names written."""
    written = []
    expression = package.get("license") or ""
    for spdx in sorted(set(expression.replace("(", " ").replace(")", " ").replace("/", " ").split())):
        if spdx in ("OR", "AND", "WITH"):
            continue
        if spdx == "MIT":
            holders = ", ".join(package.get("authors") or []) or f"the {package['name']} authors"
            text = MIT.format(holders=holders)
        elif os.path.isfile(os.path.join(COMMON, spdx)):
            with open(os.path.join(COMMON, spdx)) as f:
                text = f.read()
        else:
            continue
        name = f"LICENSE-{spdx}"
        os.makedirs(dest, exist_ok=True)
        with open(os.path.join(dest, name), "w") as f:
            f.write(text)
        written.append(name)
    return written


def licence_files(package_dir):
    found = []
    for entry in sorted(os.listdir(package_dir)):
        path = os.path.join(package_dir, entry)
        if os.path.isfile(path) and entry.lower().startswith(PREFIXES):
            found.append(entry)
        elif os.path.isdir(path) and not entry.startswith("."):
            for sub in sorted(os.listdir(path)):
                if os.path.isfile(os.path.join(path, sub)) and sub.lower().startswith(PREFIXES):
                    found.append(os.path.join(entry, sub))
    return found


def main():
    out = sys.argv[1]
    meta = json.load(sys.stdin)
    packages = {p["id"]: p for p in meta["packages"]}
    nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
    root = next(p["id"] for p in meta["packages"] if p["name"] == ROOT and p["source"] is None)
    seen, todo = set(), [root]
    while todo:
        node = nodes[todo.pop()]
        for dep in node["deps"]:
            if any(k["kind"] is None for k in dep["dep_kinds"]) and dep["pkg"] not in seen:
                seen.add(dep["pkg"])
                todo.append(dep["pkg"])
    rows, missing = [], []
    for pid in sorted(seen, key=lambda i: (packages[i]["name"], packages[i]["version"])):
        p = packages[pid]
        name = f"{p['name']}-{p['version']}"
        package_dir = os.path.dirname(p["manifest_path"])
        files = licence_files(package_dir)
        for f in files:
            dest = os.path.join(out, "crates", name, f)
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            shutil.copyfile(os.path.join(package_dir, f), dest)
            os.chmod(dest, 0o644)
        if not files:
            missing.append(name)
            files = [f"{f} (standard text)" for f in standard_texts(p, os.path.join(out, "crates", name))]
        rows.append("\t".join([p["name"], p["version"], p.get("license") or "", p.get("repository") or "", " ".join(files) or "-"]))
    with open(os.path.join(out, "DEPENDENCIES.tsv"), "w") as f:
        f.write("# name\tversion\tlicense (SPDX, from Cargo.toml)\trepository\tlicence files under crates/NAME-VERSION/\n")
        f.write("\n".join(rows) + "\n")
    print(f"image-licenses: {len(rows)} crates; {len(missing)} ship no licence file, given the standard"
          f" text of their SPDX licence: {' '.join(missing)}", file=sys.stderr)


if __name__ == "__main__":
    main()
