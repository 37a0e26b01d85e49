"""The one seam to git: every pygit2 call, and the few `git` processes, live here.

``Git`` wraps one repository's working tree (the main one or a linked
worktree). It is composed of one part per concern, each a module here:

- :mod:`~exq.engine.git.repository`: opening, HEAD, commits, trees and blobs
  of any commit without a checkout (the base of the others);
- :mod:`~exq.engine.git.refs`: refs, updated atomically with compare-and-set;
- :mod:`~exq.engine.git.snapshots`: the workspace committed without touching
  the user's index, HEAD or branches;
- :mod:`~exq.engine.git.worktrees`: detached linked worktrees;
- :mod:`~exq.engine.git.checkout`: the workspace's state, and a commit's files
  written into it;
- :mod:`~exq.engine.git.transport`: push and fetch of refs (through the
  ``git`` executable, which alone knows the user's ssh agent, credential
  helpers and remote config), and raw objects for a remote worker.

Every failure is an ``exq.engine.errors.GitError`` with a one-line message.
"""

from __future__ import annotations

from exq.engine.git.checkout import Checkout
from exq.engine.git.refs import ANY, check_ref_component, check_ref_name
from exq.engine.git.repository import FALLBACK_EMAIL, FALLBACK_NAME, CommitInfo
from exq.engine.git.snapshots import Snapshots
from exq.engine.git.transport import GitObject, Transport
from exq.engine.git.worktrees import WorktreeInfo, Worktrees


class Git(Snapshots, Worktrees, Checkout, Transport):
    """One git working tree; open it with ``Git.open``.

    A ``Git`` holds a pygit2 Repository, which must not be used by two threads
    at once: open one per thread (opening is cheap).
    """


__all__ = [
    "ANY",
    "FALLBACK_EMAIL",
    "FALLBACK_NAME",
    "CommitInfo",
    "Git",
    "GitObject",
    "WorktreeInfo",
    "check_ref_component",
    "check_ref_name",
]
