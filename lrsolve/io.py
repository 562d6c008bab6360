"""Files: one atomic save, validated JSON, and weights loaded as data, never as code.

Every file the package writes goes through :func:`atomic_save`: the bytes go to a
temporary file in the target's own folder, are flushed and ``fsync``-ed, and replace the
target with one ``os.replace``.  A crash or kill while saving therefore leaves either the
old file or the new one, never a torn mix; a failed save removes its temporary file, and
temporaries orphaned by a killed process (their pid is part of the name) are removed by
the next save to the same target.  A symlink is resolved first, so saving through a link
writes the file it points to and the link stays a link.

Reading:

* :func:`load_json` - UTF-8 JSON only; a binary, truncated or malformed file is a
  ``ValueError`` naming the file (never ``UnicodeDecodeError`` / ``KeyError``);
  :func:`require` checks keys and types of the parsed object.
* :func:`load_weights` - ``torch.load(weights_only=True)``: plain tensors, numbers,
  strings, lists and dicts, nothing that runs code on load.  Files written by
  :func:`save_weights` carry a SHA-256 of their tensors, checked on load; shipped files in
  ``lrsolve/data`` are checked against ``lrsolve/data/SHA256SUMS``
  (:func:`shipped_file`).  Corrupt, truncated or non-finite weights raise ``ValueError``.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any, Callable

__all__ = ["atomic_save", "save_json", "save_figure", "load_json", "require", "save_weights", "load_weights",
           "tensor_checksum", "file_sha256", "shipped_file", "SHIPPED_MANIFEST"]

#: The checksum list of the weights shipped in ``lrsolve/data`` (``sha256  filename`` lines).
SHIPPED_MANIFEST = "SHA256SUMS"

_TMP_SUFFIX = ".lrsolve-tmp"


def _umask() -> int:
    try:  # Linux: read it without changing it (os.umask is process-wide and racy)
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return True
    return True


def _remove_orphans(folder: Path, name: str) -> None:
    """Remove temporaries of ``name`` left by processes that no longer exist."""
    pattern = re.compile(r"^\." + re.escape(name) + r"\.(\d+)\.[^.]+" + re.escape(_TMP_SUFFIX) + "$")
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        match = pattern.match(entry.name)
        if match and not _pid_alive(int(match.group(1))):
            try:
                os.unlink(entry.path)
            except OSError:
                pass


def atomic_save(path: Any, data_or_writer: Any) -> Path:
    """Write ``path`` atomically; return the path actually written (symlinks resolved).

    Parameters
    ----------
    path : str or os.PathLike
        The target.  A symlink is followed: its target file is replaced, the link kept.
        Missing parent folders are created.
    data_or_writer : bytes, str or callable
        The content (``str`` is written as UTF-8), or ``writer(fh)`` that writes into a
        binary file handle (``lambda fh: torch.save(obj, fh)``,
        ``lambda fh: fig.savefig(fh, format="png")``, ``lambda fh: np.savez(fh, ...)``).

    Raises
    ------
    TypeError
        ``data_or_writer`` is neither bytes, str nor callable.

    Examples
    --------
    >>> import os, tempfile
    >>> from lrsolve.io import atomic_save
    >>> folder = tempfile.mkdtemp()
    >>> p = atomic_save(os.path.join(folder, "a.txt"), "hello")
    >>> p.read_text(), sorted(os.listdir(folder))
    ('hello', ['a.txt'])
    """
    if isinstance(data_or_writer, str):
        payload: Any = data_or_writer.encode("utf-8")
    elif isinstance(data_or_writer, (bytes, bytearray, memoryview)):
        payload = bytes(data_or_writer)
    elif callable(data_or_writer):
        payload = None
    else:
        raise TypeError("data_or_writer must be bytes, str or a callable writer(fh), got "
                        f"{type(data_or_writer).__name__}")
    target = Path(os.path.realpath(os.fspath(path)))
    if target.is_dir():
        raise ValueError(f"path {os.fspath(path)!r} is a directory, not a file")
    folder = target.parent
    folder.mkdir(parents=True, exist_ok=True)
    _remove_orphans(folder, target.name)
    try:
        mode = target.stat().st_mode & 0o7777
    except OSError:
        mode = 0o666 & ~_umask()
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}.", suffix=_TMP_SUFFIX,
                               dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            if payload is None:
                data_or_writer(fh)
            else:
                fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)  # mkstemp's 0600 would surprise a user
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # make the rename itself durable where the OS allows it
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass
    return target


def save_json(path: Any, obj: Any, *, indent: int | None = 1, default: Callable | None = None
              ) -> Path:
    """``json.dumps(obj)`` written with :func:`atomic_save` (NaN / Inf written as JSON null
    would lose information, so they are kept as Python's ``NaN`` / ``Infinity`` tokens)."""
    return atomic_save(path, json.dumps(obj, indent=indent, default=default))


def save_figure(path: Any, fig: Any, **savefig_options) -> Path:
    """``fig.savefig`` through :func:`atomic_save` (format from the file suffix, png default)."""
    fmt = Path(os.fspath(path)).suffix.lstrip(".") or "png"
    return atomic_save(path, lambda fh: fig.savefig(fh, format=fmt, **savefig_options))


def load_json(path: Any, *, what: str = "JSON file", max_bytes: int = 1 << 28) -> Any:
    """Parse a UTF-8 JSON file, raising ``ValueError`` naming ``path`` for anything else.

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        Too large, not UTF-8 (e.g. a binary file), or not valid JSON.
    """
    p = Path(os.fspath(path))
    with open(p, "rb") as fh:
        raw = fh.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise ValueError(f"{p} is larger than {max_bytes} bytes: not a {what}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{p} is not a {what}: it is not UTF-8 text (a binary file?)") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{p} is not a {what} (invalid or truncated JSON: {exc})") from None


def require(obj: Any, key: str, types: Any, *, where: str, allow_none: bool = False) -> Any:
    """``obj[key]`` when ``obj`` is a dict holding ``key`` of type ``types``; else ``ValueError``.

    ``where`` names the file or object in the message.  ``bool`` is never accepted as a
    number.
    """
    if not isinstance(obj, dict):
        raise ValueError(f"{where}: expected an object (dict), got {type(obj).__name__}")
    if key not in obj:
        raise ValueError(f"{where}: missing key {key!r}")
    value = obj[key]
    if value is None and allow_none:
        return None
    types_t = types if isinstance(types, tuple) else (types,)
    if isinstance(value, bool) and bool not in types_t:
        raise ValueError(f"{where}: {key!r} must be {_type_names(types_t)}, got {value!r}")
    if not isinstance(value, types_t):
        raise ValueError(f"{where}: {key!r} must be {_type_names(types_t)}, got "
                         f"{type(value).__name__}")
    return value


def _type_names(types: tuple) -> str:
    return " or ".join(t.__name__ for t in types)


# ----------------------------------------------------------------------------------------
# weights
def _walk_tensors(obj: Any, prefix: str = ""):
    import torch
    if isinstance(obj, torch.Tensor):
        yield prefix, obj
    elif isinstance(obj, dict):
        for key in sorted(obj, key=str):
            yield from _walk_tensors(obj[key], f"{prefix}/{key}")
    elif isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            yield from _walk_tensors(value, f"{prefix}[{i}]")


def tensor_checksum(obj: Any) -> str:
    """SHA-256 over every tensor in a nested dict / list (names, dtypes, shapes, bytes)."""
    import torch
    digest = hashlib.sha256()
    for name, t in _walk_tensors(obj):
        t = t.detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        if t.numel():
            digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def save_weights(path: Any, payload: dict) -> Path:
    """``torch.save(payload)`` via :func:`atomic_save`, with ``payload["checksum"]`` added.

    ``payload`` must hold only what ``torch.load(weights_only=True)`` reads back: tensors,
    numbers, strings, None, lists, tuples and dicts of them.
    """
    import torch
    if not isinstance(payload, dict):
        raise TypeError(f"payload must be a dict, got {type(payload).__name__}")
    body = {k: v for k, v in payload.items() if k != "checksum"}
    body["checksum"] = tensor_checksum({k: v for k, v in body.items() if k != "checksum"})
    return atomic_save(path, lambda fh: torch.save(body, fh))


def file_sha256(path: Any) -> str:
    digest = hashlib.sha256()
    with open(os.fspath(path), "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_weights(path: Any, *, what: str = "weights file", map_location: Any = "cpu",
                 sha256: str | None = None) -> dict:
    """Load a weights payload as data (``torch.load(weights_only=True)``) and check it.

    Parameters
    ----------
    path : path
    what : str
        What the file should be, for messages ("DCDM model file").
    map_location : torch map_location
    sha256 : str, optional
        Expected SHA-256 of the whole file (shipped files).

    Raises
    ------
    ValueError
        Checksum mismatch, a file torch cannot read (corrupt, truncated, not a torch file),
        a file that would need code to load (pickled classes or functions), a payload that
        is not a dict, a tensor checksum mismatch, or non-finite floating tensors.
    """
    import pickle
    import torch
    p = Path(os.fspath(path))
    if not p.is_file():
        raise FileNotFoundError(f"{what} {p} does not exist")
    if sha256 is not None:
        actual = file_sha256(p)
        if actual != sha256:
            raise ValueError(f"{p} failed its checksum (sha256 {actual[:16]}..., expected "
                             f"{sha256[:16]}...): the {what} is corrupt or was modified; "
                             "reinstall lrsolve")
    try:
        payload = torch.load(p, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{p} is not a valid {what}: it holds objects that are not plain "
                         f"weights (loading them would run code), refused ({first[:200]})") \
            from None
    except Exception as exc:  # zip / EOF / runtime errors of a torn or foreign file
        raise ValueError(f"{p} is not a valid {what}: corrupt or truncated "
                         f"({type(exc).__name__}: {str(exc)[:200]})") from None
    if not isinstance(payload, dict):
        raise ValueError(f"{p} is not a valid {what}: expected a dict, got "
                         f"{type(payload).__name__}")
    stored = payload.get("checksum")
    if stored is not None:
        body = {k: v for k, v in payload.items() if k != "checksum"}
        if not isinstance(stored, str) or tensor_checksum(body) != stored:
            raise ValueError(f"{p} is not a valid {what}: its tensors do not match the "
                             "checksum written with them (corrupt file)")
    for name, t in _walk_tensors(payload):
        if t.is_floating_point() and t.numel() and not bool(torch.isfinite(t).all()):
            raise ValueError(f"{p} is not a valid {what}: tensor {name} holds NaN or Inf")
    return payload


def _manifest() -> dict:
    ref = resources.files("lrsolve").joinpath("data", SHIPPED_MANIFEST)
    sums = {}
    if ref.is_file():
        for line in ref.read_text().splitlines():
            parts = line.split()
            if len(parts) == 2:
                sums[parts[1].lstrip("*")] = parts[0]
    return sums


def shipped_file(filename: str) -> tuple[Path, str]:
    """Path and expected SHA-256 of a file shipped in ``lrsolve/data``.

    Raises ``ValueError`` when the file is missing from the installation or has no entry
    in the manifest.
    """
    sums = _manifest()
    if filename not in sums:
        raise ValueError(f"{filename} has no checksum in lrsolve/data/{SHIPPED_MANIFEST}")
    path = Path(str(resources.files("lrsolve").joinpath("data", filename)))
    if not path.is_file():
        raise ValueError(f"shipped file {filename} is missing from this installation "
                         f"({path})")
    return path, sums[filename]
