"""Command-line usage: every command's help with an example, usage errors (status 2), interrupts (status 130),
variadic options, and shell completion."""
from __future__ import annotations

import pytest

import mcuc.cli
from mcuc.cli import compile_command, main

COMMANDS = ["compile", "run", "verify", "profile", "search", "flash", "boards", "zoo", "redistribute"]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_shows_an_example(command, capsys):
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"Usage: mcuc {command} ")
    assert "Examples:" in out
    assert any(line.strip().startswith(f"mcuc {command}") for line in out.split("Examples:")[1].splitlines())
    assert main([command, "-h"]) == 0
    assert capsys.readouterr().out == out


def test_top_level_help_lists_every_command(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(f"  {c} " in out for c in COMMANDS)
    assert "Examples:" in out


@pytest.mark.parametrize("argv,message", [
    (["bogus"], "No such command 'bogus'"),
    (["compile"], "Missing argument 'MODEL'"),
    (["boards", "--bogus"], "No such option '--bogus'"),
    (["compile", "m.onnx", "--schedule", "fast"], "'fast' is not one of 'layer', 'fused', 'patch', 'auto'"),
    (["compile", "m.onnx", "--split", "two"], "'two' is not a valid integer"),
    (["compile", "m.onnx", "--patch-grid", "2"], "requires 2 arguments"),
    (["compile", "m.onnx", "--mean"], "requires an argument"),
    (["compile", "m.onnx", "--mean", "x"], "'x' is not a list of numbers"),
    (["run", "out"], "Missing option '--input'"),
    (["redistribute", "-o", "d"], "Missing option '--base'"),
])
def test_usage_errors_exit_2(argv, message, capsys):
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert message in captured.err and "Error:" in captured.err
    assert "Traceback" not in captured.err and captured.out == ""


def test_usage_error_shows_usage(capsys):
    assert main(["compile"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Usage: mcuc compile [OPTIONS] MODEL") and "mcuc compile --help" in err


def test_no_command_shows_help(capsys):
    assert main([]) == 2
    assert "Commands:" in capsys.readouterr().err


def test_interrupt_exits_130(monkeypatch, capsys):
    def interrupted() -> list:
        raise KeyboardInterrupt

    monkeypatch.setattr(mcuc.cli, "list_boards", interrupted)
    assert main(["boards"]) == 130
    assert capsys.readouterr().err.strip() == "error: interrupted"


@pytest.mark.parametrize("argv,mean,std", [
    (["m.onnx", "--mean", "0.485", "0.456", "0.406", "--std", "0.229", "0.224", "0.225"],
     [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
    (["--mean", "0.5", "0.25", "m.onnx", "--std", "-1", "2e-1"], [0.5, 0.25], [-1.0, 0.2]),
    (["m.onnx", "--mean=0.1,0.2,0.3", "--std", "0.5"], [0.1, 0.2, 0.3], [0.5]),
    (["m.onnx"], None, None),
])
def test_mean_std_take_several_numbers(argv, mean, std):
    params = compile_command.make_context("compile", argv).params
    assert params["model"] == "m.onnx"
    assert params["mean"] == (pytest.approx(mean) if mean else None)
    assert params["std"] == (pytest.approx(std) if std else None)


def test_patch_grid_takes_two_numbers():
    params = compile_command.make_context("compile", ["m.onnx", "--patch-grid", "2", "3", "--split", "5"]).params
    assert params["patch_grid"] == (2, 3) and params["split"] == 5


def test_shell_completion(monkeypatch, capsys):
    monkeypatch.setenv("_MCUC_COMPLETE", "bash_source")
    with pytest.raises(SystemExit) as e:
        main([])
    assert e.value.code == 0 and "_MCUC_COMPLETE=bash_complete" in capsys.readouterr().out
    monkeypatch.setenv("_MCUC_COMPLETE", "bash_complete")
    monkeypatch.setenv("COMP_WORDS", "mcuc compile m.onnx --schedule ")
    monkeypatch.setenv("COMP_CWORD", "4")
    with pytest.raises(SystemExit):
        main([])
    assert capsys.readouterr().out.split() == ["plain,layer", "plain,fused", "plain,patch", "plain,auto"]
