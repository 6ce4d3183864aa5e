"""Independent reader for the manifest tests: lists a tar or tar.gz with
Python's tarfile and computes the repropack tree digest (ARCHITECTURE.md,
"Manifests, tree digest") without any repropack code.

usage: tarlist.py entries|digest ARCHIVE
"""
import hashlib
import json
import os
import sys
import tarfile


def norm(name):
    raw = os.fsencode(name)
    parts = [p for p in raw.split(b"/") if p not in (b"", b".")]
    return b"/".join(parts)


def esc(b):
    return "".join(
        chr(c) if 0x21 <= c <= 0x7E and c != 0x25 else "%%%02X" % c for c in b
    )


def read(path):
    entries = []
    content = {}
    with tarfile.open(path, encoding="utf-8", errors="surrogateescape") as t:
        for m in t.getmembers():
            p = norm(m.name)
            if not p:
                continue
            e = {
                "path": p,
                "mode": m.mode & 0o7777,
                "uid": m.uid,
                "gid": m.gid,
                "mtime": int(m.mtime),
                "size": 0,
                "sha256": None,
                "symlink": None,
                "hardlink": None,
                "rdev": None,
            }
            if m.isreg():
                data = t.extractfile(m).read()
                e["kind"] = "file"
                e["size"] = len(data)
                e["sha256"] = hashlib.sha256(data).hexdigest()
                content[p] = (e["size"], e["sha256"])
            elif m.isdir():
                e["kind"] = "dir"
            elif m.issym():
                e["kind"] = "symlink"
                e["symlink"] = os.fsencode(m.linkname)
            elif m.islnk():
                e["kind"] = "file"
                e["hardlink"] = norm(m.linkname)
            elif m.isfifo():
                e["kind"] = "fifo"
            elif m.ischr():
                e["kind"] = "char"
                e["rdev"] = (m.devmajor, m.devminor)
            elif m.isblk():
                e["kind"] = "block"
                e["rdev"] = (m.devmajor, m.devminor)
            else:
                raise SystemExit("unexpected member type %r" % m.type)
            entries.append(e)
    # Hard-link groups: the canonically first member is the target.
    key = lambda p: p.split(b"/")
    groups = {}
    for e in entries:
        if e["hardlink"] is not None:
            groups.setdefault(e["hardlink"], [e["hardlink"]]).append(e["path"])
    by_path = {e["path"]: e for e in entries}
    for root, members in groups.items():
        first = min(members, key=key)
        size, sha = content[root]
        for p in members:
            by_path[p]["size"], by_path[p]["sha256"] = size, sha
            by_path[p]["hardlink"] = None if p == first else first
    return entries


def digest(entries):
    out = "repropack.tree/1\n"
    for e in sorted(entries, key=lambda e: e["path"].split(b"/")):
        line = "path=%s kind=%s mode=%04o" % (esc(e["path"]), e["kind"], e["mode"])
        if e["kind"] == "file":
            line += " size=%d sha256=%s" % (e["size"], e["sha256"])
        if e["kind"] == "symlink":
            line += " symlink=%s" % esc(e["symlink"])
        if e["hardlink"] is not None:
            line += " hardlink=%s" % esc(e["hardlink"])
        if e["kind"] in ("char", "block"):
            line += " rdev=%d,%d" % e["rdev"]
        out += line + "\n"
    return hashlib.sha256(out.encode("ascii")).hexdigest()


def main():
    what, path = sys.argv[1], sys.argv[2]
    entries = read(path)
    if what == "digest":
        print(digest(entries))
    else:
        for e in entries:
            for k in ("path", "symlink", "hardlink"):
                if e[k] is not None:
                    e[k] = e[k].hex()
        print(json.dumps(entries))


main()
