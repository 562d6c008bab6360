"""The shared file helpers (lrsolve.io) and seeding (lrsolve.seeding)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from lrsolve import io as lio
from lrsolve.seeding import as_generator


class _Payload:
    """Pickles to a call of os.makedirs: loading it would create a directory."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (os.makedirs, (self.target,))


class _FilePayload:
    """Pickles to ``open(target, "w")``: loading it would create a file."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        import builtins
        return (builtins.open, (self.target, "w"))


def test_crafted_weights_file_that_would_create_a_file_runs_no_code(tmp_path):
    target = tmp_path / "created.txt"
    bad = tmp_path / "evil.pt"
    torch.save({"w": torch.ones(1), "x": _FilePayload(str(target))}, bad)
    assert not target.exists()
    with pytest.raises(ValueError, match="not plain weights"):
        lio.load_weights(bad)
    assert not target.exists()


def test_atomic_save_writes_bytes_str_and_writer(tmp_path):
    p = tmp_path / "sub" / "a.bin"
    assert lio.atomic_save(p, b"\x00\x01") == p
    assert p.read_bytes() == b"\x00\x01"
    lio.atomic_save(p, "text")
    assert p.read_text() == "text"
    lio.atomic_save(p, lambda fh: fh.write(b"w"))
    assert p.read_bytes() == b"w"
    assert sorted(os.listdir(p.parent)) == ["a.bin"]
    with pytest.raises(TypeError, match="data_or_writer"):
        lio.atomic_save(p, 3.0)


def test_atomic_save_failure_leaves_old_file_and_no_temporary(tmp_path):
    p = tmp_path / "model.pt"
    p.write_bytes(b"old")

    def broken(fh):
        fh.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        lio.atomic_save(p, broken)
    assert p.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["model.pt"]


def test_atomic_save_through_symlink_writes_target(tmp_path):
    real = tmp_path / "real.json"
    real.write_text("{}")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    lio.save_json(link, {"a": 1})
    assert link.is_symlink()
    assert json.loads(real.read_text()) == {"a": 1}


def test_atomic_save_removes_temporaries_of_killed_processes(tmp_path):
    # A process killed mid-save (SIGKILL) cannot clean up; the next save does.
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead = int(proc.stdout)
    orphan = tmp_path / f".state.json.{dead}.abc123.lrsolve-tmp"
    orphan.write_text("partial")
    alive = tmp_path / f".state.json.{os.getpid()}.zzz.lrsolve-tmp"  # our own: kept
    alive.write_text("in flight")
    lio.save_json(tmp_path / "state.json", [1])
    assert not orphan.exists()
    assert alive.exists()


def test_atomic_save_keeps_mode_of_existing_file(tmp_path):
    p = tmp_path / "f"
    p.write_text("x")
    os.chmod(p, 0o640)
    lio.atomic_save(p, "y")
    assert (os.stat(p).st_mode & 0o777) == 0o640


@pytest.mark.parametrize("content, needle", [(b"\x80\x81\xfe binary", "UTF-8"),
                                             (b'{"a": [1, 2', "invalid or truncated"),
                                             (b"", "invalid or truncated")])
def test_load_json_bad_files_are_value_errors(tmp_path, content, needle):
    p = tmp_path / "bad.json"
    p.write_bytes(content)
    with pytest.raises(ValueError, match=needle):
        lio.load_json(p, what="saved thing")


def test_require_names_key_and_type():
    with pytest.raises(ValueError, match="missing key 'version'"):
        lio.require({}, "version", int, where="f.json")
    with pytest.raises(ValueError, match="'version' must be int"):
        lio.require({"version": True}, "version", int, where="f.json")
    assert lio.require({"v": 2}, "v", int, where="f") == 2


def test_crafted_weights_file_runs_no_code(tmp_path):
    target = tmp_path / "created_by_payload"
    bad = tmp_path / "evil.pt"
    torch.save({"state_dict": {"w": torch.ones(2)}, "x": _Payload(str(target))}, bad)
    with pytest.raises(ValueError, match="not plain weights"):
        lio.load_weights(bad, what="model file")
    assert not target.exists()


def test_weights_roundtrip_and_corruption_detected(tmp_path):
    p = tmp_path / "w.pt"
    w = torch.arange(4096, dtype=torch.float32) / 7.0
    lio.save_weights(p, {"state_dict": {"w": w}, "config": {"k": 3}})
    back = lio.load_weights(p)
    assert torch.equal(back["state_dict"]["w"], w) and back["config"] == {"k": 3}
    raw = bytearray(p.read_bytes())
    at = bytes(raw).find(w.numpy().tobytes()[:64])
    assert at > 0
    raw[at + 1000] ^= 0xFF          # flip bits inside the tensor data
    p.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="not a valid"):
        lio.load_weights(p)
    p.write_bytes(bytes(raw[: len(raw) // 2]))   # truncated
    with pytest.raises(ValueError, match="corrupt or truncated"):
        lio.load_weights(p)


def test_nonfinite_weights_rejected(tmp_path):
    p = tmp_path / "nan.pt"
    torch.save({"state_dict": {"w": torch.tensor([1.0, float("nan")])}}, p)
    with pytest.raises(ValueError, match="NaN or Inf"):
        lio.load_weights(p)


def test_shipped_weights_match_manifest():
    sums = lio._manifest()
    assert sums, "lrsolve/data/SHA256SUMS is missing"
    for name, digest in sums.items():
        path, expected = lio.shipped_file(name)
        assert lio.file_sha256(path) == expected == digest
        lio.load_weights(path, sha256=expected)


def test_sha256_mismatch_is_reported(tmp_path):
    p = tmp_path / "w.pt"
    lio.save_weights(p, {"w": torch.ones(3)})
    with pytest.raises(ValueError, match="failed its checksum"):
        lio.load_weights(p, sha256="0" * 64)


def test_no_weights_only_false_in_package():
    import lrsolve
    root = os.path.dirname(lrsolve.__file__)
    hits = []
    for folder, _, files in os.walk(root):
        for f in files:
            if f.endswith(".py"):
                text = open(os.path.join(folder, f)).read()
                if "weights_only=False" in text:
                    hits.append(os.path.join(folder, f))
    assert hits == []


def test_as_generator_reproducible_and_leaves_global_state():
    state = np.random.get_state()
    a = as_generator(5).standard_normal(4)
    b = as_generator(5).standard_normal(4)
    assert np.array_equal(a, b)
    g = np.random.default_rng(1)
    assert as_generator(g) is g
    as_generator(None).random()
    after = np.random.get_state()
    assert state[0] == after[0] and np.array_equal(state[1], after[1]) and state[2] == after[2]
    with pytest.raises(TypeError, match="seed"):
        as_generator(1.5)
    with pytest.raises(TypeError, match="seed"):
        as_generator(True)
    with pytest.raises(ValueError, match="seed"):
        as_generator(-1)
    with pytest.raises(TypeError, match="RandomState"):
        as_generator(np.random.RandomState(0))


# Files that still write without lrsolve.io (owned by other engineers; remove an entry when
# its writes go through atomic_save / save_json / save_figure).
_PENDING_WRITERS: set = set()


def test_every_package_write_goes_through_atomic_save():
    import re
    import lrsolve
    root = os.path.dirname(os.path.dirname(lrsolve.__file__))
    raw = re.compile(r"\.savefig\(path|json\.dump\(|\.write_text\(|\.write_bytes\(|"
                     r"open\([^)]*[\"'][wa]b?[\"']|os\.replace\(|mkstemp\(|"
                     r"torch\.save\((?!obj, fh|body, fh)|np\.save\(|np\.savez\((?!fh)")
    offenders = []
    for folder, _, files in os.walk(os.path.join(root, "lrsolve")):
        for f in files:
            if not f.endswith(".py"):
                continue
            path = os.path.join(folder, f)
            rel = os.path.relpath(path, root).replace(os.sep, "/")
            if rel == "lrsolve/io.py" or rel in _PENDING_WRITERS:
                continue
            for no, line in enumerate(open(path), 1):
                if raw.search(line):
                    offenders.append(f"{rel}:{no}: {line.strip()}")
    assert offenders == []
