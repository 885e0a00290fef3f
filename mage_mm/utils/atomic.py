"""Atomic file writes: a kill at any moment leaves either the old or the new file.

Every writer goes through a temporary file in the *same* folder as the target
(so the final :func:`os.replace` is a rename on one file system, atomic on
POSIX), flushed and ``fsync``-ed before the rename, and the folder is
``fsync``-ed after it so that the rename itself survives a power loss.

Temporary files are named ``.<stem>.tmp-<pid>-<token><suffix>``: hidden, so
globbing ``*.pth`` / ``*.png`` never picks one up, and with the target's suffix
kept, because some writers choose the format from it (PIL's ``Image.save``)
or append one when it is missing (``numpy.savez`` adds ``.npz``). The writer's
pid in the name lets :func:`remove_stale_temps` delete what a killed process
left behind without touching a live writer's file.

The target is never written through a symlink: a symlink at the target path
is an error (a planted ``grid.png -> ~/.bashrc`` must not be overwritten), and
:func:`check_no_symlinks` checks every folder between a root and the target.

Example::

    with atomic_write('out/stats.json', 'w') as f:
        json.dump(stats, f)
    with atomic_path('out/grid.png') as tmp:
        image.save(tmp)
    atomic_torch_save(state, 'work_dir/iter_10.pth')
"""
import contextlib
import errno
import os
import os.path as osp
import re
import secrets
import time
from typing import IO, Any, Callable, Iterator, List, Optional, Union

PathLike = Union[str, 'os.PathLike[str]']

# ".<stem>.tmp-<pid>-<token><suffix>", token is 8 hex digits
_TEMP_RE = re.compile(r'^\.(?P<stem>.*)\.tmp-(?P<pid>\d+)-(?P<token>[0-9a-f]{8})(?P<suffix>(\.[^./]*)?)$')


class SymlinkRefusedError(OSError):
    """The target (or a folder on the way to it) is a symbolic link."""


def _split_name(name: str) -> tuple:
    stem, suffix = osp.splitext(name)
    return stem, suffix


def temp_name_for(path: PathLike, pid: Optional[int] = None) -> str:
    """A fresh temporary path beside ``path`` (same folder, same suffix).

    Args:
        path (str | PathLike): The final target path.
        pid (int, optional): The pid recorded in the name. Defaults to this process's.

    Returns:
        str: ``<folder>/.<stem>.tmp-<pid>-<token><suffix>``.
    """
    path = os.fspath(path)
    folder, name = osp.split(path)
    stem, suffix = _split_name(name)
    token = secrets.token_hex(4)
    return osp.join(folder, f'.{stem}.tmp-{os.getpid() if pid is None else pid}-{token}{suffix}')


def is_temp_name(name: str) -> bool:
    """Whether ``name`` (a base name) is one of our temporary files."""
    return _TEMP_RE.match(osp.basename(name)) is not None


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def remove_stale_temps(folder: PathLike, target: Optional[PathLike] = None,
                       max_age_s: Optional[float] = None) -> List[str]:
    """Delete temporary files that killed writers left in ``folder``.

    A temporary file is stale when the pid in its name is not a running
    process, or (when ``max_age_s`` is given) when it was last modified more
    than ``max_age_s`` seconds ago (a pid can be reused after a reboot or in
    another container). Temporary files of this process are kept only while
    younger than ``max_age_s`` if that is given, else always.

    Args:
        folder (str | PathLike): The folder to clean. A missing folder is fine.
        target (str | PathLike, optional): Only remove temporaries of this
            target (its base name). Defaults to None: all of ours in ``folder``.
        max_age_s (float, optional): Also remove temporaries older than this.
            Defaults to None.

    Returns:
        list[str]: The removed paths.
    """
    folder = os.fspath(folder)
    if not osp.isdir(folder):
        return []
    want = None
    if target is not None:
        want = _split_name(osp.basename(os.fspath(target)))
    removed = []
    now = time.time()
    for name in os.listdir(folder):
        match = _TEMP_RE.match(name)
        if match is None:
            continue
        if want is not None and (match['stem'], match['suffix']) != want:
            continue
        full = osp.join(folder, name)
        try:
            st = os.lstat(full)
        except FileNotFoundError:
            continue
        old = max_age_s is not None and now - st.st_mtime > max_age_s
        if _pid_alive(int(match['pid'])) and not old:
            continue
        try:
            os.unlink(full)
            removed.append(full)
        except FileNotFoundError:
            pass
    return removed


def check_no_symlinks(path: PathLike, root: Optional[PathLike] = None) -> None:
    """Raise if ``path`` or a folder between ``root`` and it is a symlink.

    Args:
        path (str | PathLike): The target file (it need not exist).
        root (str | PathLike, optional): Where the check starts; the root
            itself may be a symlink (the user chose it). Defaults to None:
            only ``path`` itself is checked.

    Raises:
        SymlinkRefusedError: Naming the offending link and where it points.
        ValueError: ``path`` is not inside ``root``.
    """
    path = osp.abspath(os.fspath(path))
    to_check = [path]
    if root is not None:
        root = osp.abspath(os.fspath(root))
        rel = osp.relpath(path, root)
        if rel == os.pardir or rel.startswith(os.pardir + os.sep) or osp.isabs(rel):
            raise ValueError(f'refusing to write {path}: it is outside the output folder {root}')
        parts = rel.split(os.sep)
        current = root
        for part in parts[:-1]:
            current = osp.join(current, part)
            to_check.append(current)
    for candidate in to_check:
        if osp.islink(candidate):
            raise SymlinkRefusedError(
                errno.ELOOP, f'refusing to write through the symbolic link {candidate} '
                f'(-> {os.readlink(candidate)}); remove it or choose another output path', candidate)


def _fsync_dir(folder: str) -> None:
    try:
        fd = os.open(folder or '.', os.O_RDONLY | getattr(os, 'O_DIRECTORY', 0))
    except OSError:  # some file systems do not allow opening folders
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_file(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _commit(tmp: str, path: str, check: Optional[Callable[[str], Any]]) -> None:
    if check is not None:
        check(tmp)
    # the target may have become a symlink while we wrote: os.replace would
    # replace the link itself (not its target), which is safe, but refuse anyway
    # so that the behaviour does not depend on timing
    check_no_symlinks(path)
    os.replace(tmp, path)
    _fsync_dir(osp.dirname(path))


@contextlib.contextmanager
def atomic_path(path: PathLike, root: Optional[PathLike] = None, check: Optional[Callable[[str], Any]] = None,
                makedirs: bool = True) -> Iterator[str]:
    """Yield a temporary path to write; on success it replaces ``path`` atomically.

    For writers that want a file name (``PIL.Image.save``, ``numpy.savez``,
    ``cv2.imwrite``). The temporary path has the target's suffix. On an
    exception inside the block the temporary file is removed and ``path`` is
    left as it was.

    Args:
        path (str | PathLike): The final target.
        root (str | PathLike, optional): No folder between ``root`` and
            ``path`` may be a symlink (see :func:`check_no_symlinks`).
            Defaults to None: only the target itself is checked.
        check (callable, optional): Called with the temporary path before the
            rename (e.g. re-open the image); an exception aborts the write.
            Defaults to None.
        makedirs (bool): Create the target's folder. Defaults to True.

    Raises:
        SymlinkRefusedError: The target or a folder on the way is a symlink.
        FileNotFoundError: The block wrote nothing at the temporary path.
    """
    path = os.fspath(path)
    check_no_symlinks(path, root)
    folder = osp.dirname(osp.abspath(path))
    if makedirs:
        os.makedirs(folder, exist_ok=True)
    tmp = temp_name_for(path)
    try:
        yield tmp
        if not osp.isfile(tmp) or osp.islink(tmp):
            raise FileNotFoundError(f'the writer produced no file at {tmp} (for {path})')
        _fsync_file(tmp)
        _commit(tmp, path, check)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_write(path: PathLike, mode: str = 'wb', root: Optional[PathLike] = None,
                 check: Optional[Callable[[str], Any]] = None, makedirs: bool = True,
                 encoding: Optional[str] = None) -> Iterator[IO]:
    """Yield an open file; on success it replaces ``path`` atomically.

    Args:
        path (str | PathLike): The final target.
        mode (str): ``'wb'`` or ``'w'`` (text). Defaults to ``'wb'``.
        root (str | PathLike, optional): See :func:`atomic_path`.
        check (callable, optional): See :func:`atomic_path`.
        makedirs (bool): Create the target's folder. Defaults to True.
        encoding (str, optional): Text encoding for ``'w'``. Defaults to
            None (``'utf-8'`` in text mode).

    Raises:
        ValueError: ``mode`` is not a write mode.
        SymlinkRefusedError: The target or a folder on the way is a symlink.
    """
    if mode not in ('w', 'wb', 'wt'):
        raise ValueError(f"atomic_write supports modes 'w', 'wt' and 'wb', got {mode!r}")
    if 'b' not in mode and encoding is None:
        encoding = 'utf-8'
    with atomic_path(path, root=root, check=check, makedirs=makedirs) as tmp:
        # O_EXCL | O_NOFOLLOW: never open a file someone planted at the temp name
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, 'O_NOFOLLOW', 0)
        fd = os.open(tmp, flags, 0o666)
        with os.fdopen(fd, mode, encoding=encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())


def atomic_torch_save(obj: Any, path: PathLike, root: Optional[PathLike] = None,
                      check: Optional[Callable[[str], Any]] = None) -> None:
    """``torch.save`` that never leaves a half-written file under ``path``.

    Args:
        obj: What to save.
        path (str | PathLike): The final checkpoint path.
        root (str | PathLike, optional): See :func:`atomic_path`.
        check (callable, optional): See :func:`atomic_path`.
    """
    import torch
    with atomic_write(path, 'wb', root=root, check=check) as f:
        torch.save(obj, f)
