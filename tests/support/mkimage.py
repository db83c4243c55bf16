#!/usr/bin/env python3
# mkimage.py OUT.tar REF  -> OCI image archive built from Debian's busybox-static
# Source: the project's test-recipes §3 (stdlib only). Used by tests/support/containerd.rs and
# scripts/bench/detect.sh to get a registry-free image into a test containerd.
import hashlib, io, json, sys, tarfile, gzip
out, ref = sys.argv[1], sys.argv[2]
def ti(name, **kw):
    t = tarfile.TarInfo(name); t.mtime = 0
    for k, v in kw.items(): setattr(t, k, v)
    return t
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
    for d in ["bin", "etc", "proc", "sys", "dev", "tmp", "root", "var", "run"]:
        t.addfile(ti(d, type=tarfile.DIRTYPE, mode=0o755))
    data = open("/bin/busybox", "rb").read()
    t.addfile(ti("bin/busybox", size=len(data), mode=0o755), io.BytesIO(data))
    for a in ["sh", "sleep", "cat", "ls", "echo", "httpd", "nc", "wget", "ps", "id", "hostname"]:
        t.addfile(ti("bin/" + a, type=tarfile.SYMTYPE, linkname="busybox"))
    for f, c in [("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"), ("etc/group", b"root:x:0:\n")]:
        t.addfile(ti(f, size=len(c), mode=0o644), io.BytesIO(c))
diff = buf.getvalue(); layer = gzip.compress(diff, mtime=0)
sha = lambda b: "sha256:" + hashlib.sha256(b).hexdigest()
cfg = json.dumps({"architecture": "amd64", "os": "linux",
    "config": {"Env": ["PATH=/bin"], "Cmd": ["/bin/sh"], "WorkingDir": "/"},
    "rootfs": {"type": "layers", "diff_ids": [sha(diff)]}}, sort_keys=True).encode()
man = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(cfg), "size": len(cfg)},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": sha(layer), "size": len(layer)}]},
    sort_keys=True).encode()
idx = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
    "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(man), "size": len(man),
        "platform": {"architecture": "amd64", "os": "linux"},
        "annotations": {"io.containerd.image.name": ref, "org.opencontainers.image.ref.name": ref}}]},
    sort_keys=True).encode()
with tarfile.open(out, "w") as t:
    for name, b in [("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'), ("index.json", idx)] + \
                   [("blobs/sha256/" + sha(b)[7:], b) for b in (cfg, layer, man)]:
        t.addfile(ti(name, size=len(b), mode=0o644), io.BytesIO(b))
