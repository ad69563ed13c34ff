"""Every domain CLI has the same shape: the same verbs, the same shared options, working --help.

The tables below are the contract of ARCHITECTURE.md's "CLI conventions": removing a verb or a
shared option from any domain app fails this test. Exemptions are listed with their reason.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path

import pytest
from typer.main import get_command
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]
DOMAINS = sorted(
    p.name
    for p in (ROOT / "packages").iterdir()
    if (p / "pyproject.toml").is_file() and p.name != "core"
)

COMMON_VERBS = {"train", "eval", "compare", "list"}
OWN_VERBS = {
    "timeseries": {"forecast"},
    "physics": {"simulate"},
    "streaming": set(),
    "vision": {"sample", "restore", "attack"},
}

# verb -> (positional argument metavar, shared options it must offer)
SHARED = {
    "train": (
        "MODEL",
        {
            "--data",
            "--out",
            "--seed",
            "--epochs",
            "--experts",
            "--threads",
            "--device",
            "--devices",
            "--strategy",
            "--resume",
            "--quiet",
        },
    ),
    "eval": ("RUN", {"--data", "--out", "--threads", "--quiet"}),
    "compare": (
        None,
        {"--model", "--data", "--out", "--seed", "--epochs", "--experts", "--threads", "--quiet"},
    ),
    "list": (None, set()),
}

# (domain, verb) -> options it may leave out, and why
EXEMPT = {
    # river learns in one prequential pass on the CPU: no epochs, no Lightning trainer, and a
    # saved model is continued by `eval`, not `train --resume`
    ("streaming", "train"): {"--epochs", "--device", "--devices", "--strategy", "--resume"},
    ("streaming", "compare"): {"--epochs"},
}

# names every domain must spell the same way when it offers the concept
CANONICAL = {
    "--seed",
    "--out",
    "--data",
    "--device",
    "--devices",
    "--strategy",
    "--epochs",
    "--experts",
    "--threads",
    "--quiet",
    "--resume",
    "--model",
}
NON_CANONICAL = {
    "--models": "--model",
    "--n-experts": "--experts",
    "--num-experts": "--experts",
    "--output": "--out",
    "--out-dir": "--out",
    "--random-seed": "--seed",
    "--n-epochs": "--epochs",
    "--accelerator": "--device",
    "--num-threads": "--threads",
}


def _apps() -> dict[str, object]:
    return {ep.name: ep.load() for ep in entry_points(group="moesuite.cli")}


def _group(domain: str):
    apps = _apps()
    assert domain in apps, f"packages/{domain} registers no `moesuite.cli` entry point"
    return get_command(apps[domain])


def _options(cmd) -> dict[str, object]:
    return {opt: p for p in cmd.params if p.param_type_name == "option" for opt in p.opts}


def _arguments(cmd) -> list[str]:
    return [(p.metavar or p.name).upper() for p in cmd.params if p.param_type_name == "argument"]


def test_every_domain_package_registers_an_app():
    assert set(DOMAINS) <= set(_apps()), (
        f"domains without a CLI: {sorted(set(DOMAINS) - set(_apps()))}"
    )


@pytest.mark.parametrize("domain", DOMAINS)
def test_domain_has_the_common_and_its_own_verbs(domain):
    verbs = set(_group(domain).commands)
    missing = (COMMON_VERBS | OWN_VERBS.get(domain, set())) - verbs
    assert not missing, f"`moesuite {domain}` lacks the verbs {sorted(missing)}"


@pytest.mark.parametrize("domain", DOMAINS)
@pytest.mark.parametrize("verb", sorted(SHARED))
def test_verb_offers_the_shared_options(domain, verb):
    cmd = _group(domain).commands.get(verb)
    assert cmd is not None, f"`moesuite {domain}` has no `{verb}`"
    positional, required = SHARED[verb]
    opts = _options(cmd)
    missing = required - EXEMPT.get((domain, verb), set()) - set(opts)
    assert not missing, f"`moesuite {domain} {verb}` lacks {sorted(missing)}"
    if positional:
        assert _arguments(cmd)[:1] == [positional], (
            f"`moesuite {domain} {verb}` must take {positional} first"
        )
    if "--model" in opts and verb == "compare":
        assert opts["--model"].multiple, f"`moesuite {domain} compare --model` must be repeatable"


@pytest.mark.parametrize("domain", DOMAINS)
def test_no_command_spells_a_shared_option_another_way(domain):
    for verb, cmd in _group(domain).commands.items():
        for opt in _options(cmd):
            assert opt not in NON_CANONICAL, (
                f"`moesuite {domain} {verb}` has {opt}; the shared name is {NON_CANONICAL[opt]}"
            )


@pytest.mark.parametrize("domain", DOMAINS)
def test_every_help_runs(domain):
    runner = CliRunner()
    app = _apps()[domain]
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0, result.output
    for verb in _group(domain).commands:
        result = runner.invoke(app, [verb, "--help"])
        assert result.exit_code == 0, f"`moesuite {domain} {verb} --help` failed:\n{result.output}"
        assert "Usage" in result.output


@pytest.mark.parametrize("domain", DOMAINS)
def test_an_out_of_range_value_is_one_error_line(domain):
    group = _group(domain)
    verb = "train" if "--epochs" in _options(group.commands["train"]) else "compare"
    flag = "--epochs" if "--epochs" in _options(group.commands[verb]) else "--seed"
    value = "0" if flag == "--epochs" else "x"
    args = (
        [verb, "some-model"] if verb == "train" else [verb]
    )  # a positional MODEL must not mask the check
    result = CliRunner().invoke(_apps()[domain], [*args, flag, value])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and flag in lines[0], result.output


@pytest.mark.parametrize("domain", DOMAINS)
def test_every_option_and_argument_has_help(domain):
    """Help texts exist on every command's options (a nested ``Annotated`` silently drops them)."""
    for verb, cmd in _group(domain).commands.items():
        for p in cmd.params:
            if p.param_type_name == "option" and "--help" not in p.opts:
                assert (p.help or "").strip(), f"`moesuite {domain} {verb} {p.opts[0]}` has no help"
