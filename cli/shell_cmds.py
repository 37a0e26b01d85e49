"""``exq completion``: a shell's completion script, for a shell named, as ``dvc completion``.

typer's ``--show-completion`` writes for the shell that runs exq (it asks the
parent process), so a user in bash cannot get zsh's script from it.
"""

from __future__ import annotations

import typer

from exq.cli.app import app, fail

SHELLS = ("bash", "zsh", "fish")


@app.command("completion")
def completion_script(
    shell: str = typer.Option(
        "bash", "--shell", "-s", help="The shell to write for: bash, zsh or fish."
    ),
) -> None:
    """Print the completion script of a shell, to save where that shell reads it.

    For example `exq completion -s zsh > ~/.zfunc/_exq`; `--install-completion`
    installs it for the shell running exq.
    """
    if shell not in SHELLS:
        fail(f"unknown shell '{shell}': choose bash, zsh or fish", code=2)
    from typer._completion_shared import get_completion_script

    script = get_completion_script(prog_name="exq", complete_var="_EXQ_COMPLETE", shell=shell)
    typer.echo(script)
