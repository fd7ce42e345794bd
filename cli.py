"""The `medicalrec` console script: a thin layer over the library (no torch at start-up)."""

from __future__ import annotations

import typer
from typer.core import TyperGroup

from .errors import UserError
from .output import err_console


class _Group(TyperGroup):
    """Turns a UserError anywhere below into one line on stderr and exit code 2."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except UserError as exc:
            err_console.print(f"Error: {exc}", markup=False, highlight=False, soft_wrap=True)
            ctx.exit(2)


app = typer.Typer(
    cls=_Group,
    name="medicalrec",
    help="Mine the medical-imaging literature into a KB, recommend the classifier to train, verify it on MedMNIST.\n\n"
         "Example: medicalrec kb stats",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register() -> None:
    from .kb.cli import app as kb_app

    app.add_typer(kb_app, name="kb")
    from .kb.serve import register as register_serve  # Datasette itself is imported only when serve runs

    register_serve(app)
    for module_name in ("extract", "recommend", "validate"):
        try:
            module = __import__(f"medicalrec.{module_name}.cli", fromlist=["register"])
        except ModuleNotFoundError as exc:
            if exc.name != f"medicalrec.{module_name}.cli":
                raise
            continue
        module.register(app)


@app.command()
def demo() -> None:
    """The main job on the bundled seed KB: its stats, then a recommendation with its evidence.

    Example: medicalrec demo
    """
    from .demo import run_demo

    run_demo()


_register()


def main() -> None:
    app()
