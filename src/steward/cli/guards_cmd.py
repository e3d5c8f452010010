"""``steward guards``: build and inspect the built-in prompt-injection detector."""

from __future__ import annotations

from typing import Annotated

import typer

from steward.cli.common import console, handle_errors, print_json, table

app = typer.Typer(help="The services' built-in injection detector: build it now, or show the cached one.",
                  no_args_is_help=True)


def _print(info, json_out: bool) -> None:  # type: ignore[no-untyped-def]
    if json_out:
        print_json(info.to_dict())
        return
    sc = info.scorecard
    t = table("built-in injection detector", "field", "value")
    for k, v in (("name", info.name), ("folder", info.path), ("key", info.key), ("base model", info.base_model),
                 ("training rows", ", ".join(f"{k}: {v}" for k, v in info.rows.items())),
                 ("test split", f"{sc.get('test_rows')} rows, {sc.get('injections')} injections"),
                 ("recall (test)", sc.get("recall")), ("false-block rate (test)", sc.get("false_block_rate")),
                 ("evaluate gates", "passed" if sc.get("gates_passed") else "FAILED")):
        t.add_row(k, str(v))
    console.print(t)


@app.command()
@handle_errors
def build(
    force: Annotated[bool, typer.Option("--force", help="Build again even if a cached detector matches.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the detector's record as JSON.")] = False,
) -> None:
    """Build the detector now (data → train → evaluate on the shipped set; a few minutes on 2 cores) into
    $STEWARD_CACHE (default ~/.cache/steward). `steward serve` and `steward gateway` do this on first use."""
    from steward.service.guards.detector import build as do_build

    _print(do_build(progress=not json_out, force=force), json_out)


@app.command()
@handle_errors
def show(
    json_out: Annotated[bool, typer.Option("--json", help="Print the detector's record as JSON.")] = False,
) -> None:
    """Show the cached detector (checked: key and weight hashes); exit 1 if it is not built yet."""
    from steward.cache import cache_root
    from steward.service.guards.detector import RECORD, detector_key, folder_for, read

    key, _, _ = detector_key()
    folder = folder_for(cache_root(), key)
    if not (folder / RECORD).is_file():
        console.print(f"not built yet (would be {folder}); `steward guards build` builds it")
        raise typer.Exit(1)
    _print(read(folder, key), json_out)
