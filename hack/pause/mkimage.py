#!/usr/bin/env python3
"""Write a one-layer container image as a docker-archive tarball, without a daemon.

    mkimage.py --tag registry.k8s.io/pause:3.10.1 --entrypoint /pause --user 65535:65535 \
        --add pause:/pause out.tar

The archive (manifest.json, image config, layer tar) loads with `docker load` and with
`ctr -n k8s.io images import`. Timestamps are fixed (SOURCE_DATE_EPOCH, default 0), so the
same inputs give the same image ID.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import tarfile
from datetime import UTC, datetime


def _info(name: str, size: int, mtime: int, mode: int, kind: bytes = tarfile.REGTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode, info.type = size, mtime, mode, kind
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def build_layer(files: list[tuple[str, str]], mtime: int) -> bytes:
    """A layer tar holding each (source, /dest) file, with its parent folders."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        seen: set[str] = set()
        for src, dest in files:
            parts = dest.strip("/").split("/")
            for i in range(1, len(parts)):
                folder = "/".join(parts[:i])
                if folder not in seen:
                    seen.add(folder)
                    tar.addfile(_info(folder, 0, mtime, 0o755, tarfile.DIRTYPE))
            with open(src, "rb") as f:
                data = f.read()
            mode = 0o755 if os.access(src, os.X_OK) else 0o644
            tar.addfile(_info("/".join(parts), len(data), mtime, mode), io.BytesIO(data))
    return buf.getvalue()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tag", required=True, help="repository:tag, e.g. registry.k8s.io/pause:3.10.1")
    p.add_argument("--add", action="append", required=True, metavar="SRC:/DEST", help="file to put in the image")
    p.add_argument("--entrypoint", action="append", default=[], help="entrypoint argument (repeatable)")
    p.add_argument("--user", default="", help="user[:group] the container runs as")
    p.add_argument("out", help="the docker-archive tarball to write")
    args = p.parse_args()

    mtime = int(os.environ.get("SOURCE_DATE_EPOCH", "0"))
    created = datetime.fromtimestamp(mtime, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    layer = build_layer([tuple(a.split(":", 1)) for a in args.add], mtime)  # type: ignore[misc]
    layer_id = hashlib.sha256(layer).hexdigest()
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": created,
        "config": {"Entrypoint": args.entrypoint, "User": args.user, "Env": [], "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{layer_id}"]},
        "history": [{"created": created, "created_by": "hack/pause/mkimage.py"}],
    }
    config_bytes = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    config_id = hashlib.sha256(config_bytes).hexdigest()
    repo, tag = args.tag.rsplit(":", 1)
    manifest = [{"Config": f"{config_id}.json", "RepoTags": [args.tag], "Layers": [f"{layer_id}/layer.tar"]}]
    members = {
        f"{layer_id}/layer.tar": layer,
        f"{layer_id}/VERSION": b"1.0",
        f"{config_id}.json": config_bytes,
        "manifest.json": json.dumps(manifest).encode(),
        "repositories": json.dumps({repo: {tag: layer_id}}).encode(),
    }
    tmp = args.out + ".tmp"
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(_info(layer_id, 0, mtime, 0o755, tarfile.DIRTYPE))
        for name, data in members.items():
            tar.addfile(_info(name, len(data), mtime, 0o644), io.BytesIO(data))
    os.replace(tmp, args.out)
    print(f"{args.tag} sha256:{config_id} -> {args.out}")


if __name__ == "__main__":
    main()
