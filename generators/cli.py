"""``qrmi-gen``: build QRMI payloads from circuits and Pulser sequences.

Only click and qrmi_tasks' light modules are imported here; qiskit, pulser and
qiskit_ibm_runtime are imported by the command that needs them, so ``--help`` is fast.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from qrmi_tasks import __version__
from qrmi_tasks.errors import (
    EXIT_INTERNAL,
    EXIT_OK,
    EXIT_OUTPUT,
    EXIT_PROVIDER,
    EXIT_USAGE,
    UsageError,
    exit_codes_help,
)
from qrmi_tasks.front import EXIT_INTERRUPTED, exit_with, run_command

PROGRAM = "qrmi-gen"
VERBOSE_HINT = f"rerun as '{PROGRAM} -v ...'"
_CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

# The runner's codes, in qrmi-gen's words (click rewraps this paragraph to the terminal).
EXIT_MEANINGS = {
    str(EXIT_OK): "success",
    str(EXIT_USAGE): "bad input or configuration (one 'error:' line on stderr)",
    str(EXIT_PROVIDER): "the resource could not be reached",
    str(EXIT_OUTPUT): "the payload could not be written",
    str(EXIT_INTERNAL): f"internal error (a bug: {VERBOSE_HINT} for the traceback)",
    str(EXIT_INTERRUPTED): "interrupted (Ctrl-C)",
}

HELP = f"""qrmi-gen - build QRMI payloads for qrmi-task-runner.

\b
  qrmi-gen sampler bell.qasm --shots 1000 --target fake_torino
  qrmi-gen estimator bell.qasm --observable ZZ --observable "0.5*XX+ZI"
  qrmi-gen pulser sequence.py --runs 500
  qrmi-gen qpp analog_circuit.py --runs 500
  qrmi-gen iqm ghz.qasm --shots 1000 --resource garnet
  qrmi-gen alice-bob bell.qasm --shots 1000 --param averageNbPhotons=4
  qrmi-gen validate payload.json --type direct-access

Circuits are OpenQASM 2/3 or QPY files. With --target (a fake backend of
qiskit_ibm_runtime.fake_provider, offline) or --resource (a configured QPU resource,
online) they are transpiled to ISA circuits, which real QPUs require.

{exit_codes_help(EXIT_MEANINGS)}
"""


@click.group(help=HELP, context_settings=_CONTEXT)
@click.version_option(
    __version__, "-V", "--version", prog_name=PROGRAM, message="%(prog)s %(version)s"
)
@click.option("-v", "--verbose", count=True, help="Debug log on stderr (tracebacks included).")
def cli(verbose: int) -> None:
    """qrmi-gen - build QRMI payloads (Qiskit primitives, Pulser sequences)."""
    if verbose:
        from qrmi_tasks.logsetup import setup_logging

        setup_logging(verbose, program=PROGRAM, capture_warnings=False)


# -- shared options ---------------------------------------------------------------------------
def _output_options(primitive: bool) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        if primitive:
            func = click.option(
                "--support-qiskit",
                is_flag=True,
                help="Results in qiskit-ibm-runtime's encoded form (support_qiskit: true) "
                "instead of IBM's plain JSON; qrmi-result and qrmi_tasks.load read both.",
            )(func)
            func = click.option(
                "--params-only",
                is_flag=True,
                help="Write only the primitive's 'parameters' object (the input IBM's "
                "services take), not the QRMI payload.",
            )(func)
        return click.option(
            "-o",
            "--output",
            metavar="FILE",
            help="Where to write the payload ('-': stdout). Default: "
            + ("{sampler,estimator}_input_{backend}.json" if primitive else "sequence_input.json")
            + " in the current directory.",
        )(func)

    return decorate


def _target_options(func: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option(
            "--target",
            metavar="FAKE_BACKEND",
            help="Transpile for a fake backend of qiskit_ibm_runtime.fake_provider "
            "(e.g. fake_torino), offline.",
        ),
        click.option(
            "--resource",
            metavar="NAME",
            help="Transpile for the live target of a configured direct-access or "
            "qiskit-runtime-service resource (same configuration as qrmi-task-runner).",
        ),
        click.option(
            "--config",
            metavar="FILE",
            envvar="QRMI_CONFIG",
            help="Resources file for --resource [env: QRMI_CONFIG].",
        ),
        click.option(
            "--optimization-level",
            type=click.IntRange(0, 3),
            default=1,
            show_default=True,
            help="Transpiler optimization level.",
        ),
        click.option(
            "--param-values",
            metavar="JSON|FILE",
            help="Values of the circuits' parameters: a JSON array (rows for several "
            "bindings) in the order of the parameters sorted by name, or an object "
            "{name: values}; applied to every parametrized circuit.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@contextmanager
def _warnings_as_lines() -> Iterator[None]:
    """Our IsaWarning as one 'warning:' line; library warnings (deprecations) hidden."""
    from generators.core import IsaWarning

    def show(message: Any, category: type, *_: Any, **__: Any) -> None:
        click.echo(f"warning: {' '.join(str(message).split())}", err=True)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warnings.simplefilter("always", IsaWarning)
        warnings.showwarning = show
        yield


def _target(target: str | None, resource: str | None, config: str | None) -> Any:
    if target and resource:
        raise UsageError("give --target or --resource, not both")
    from generators.targets import fake_target, resource_target

    if target:
        return fake_target(target)
    if resource:
        return resource_target(resource, config_path=config)
    return None


def _circuits(paths: tuple[str, ...], param_values: str | None) -> list[tuple[Any, Any]]:
    """Every circuit in ``paths`` with its parameter values (None: it has no parameters).

    Says on stderr in which order a circuit's parameters take the values: Qiskit sorts
    them by name, not by where they appear in the file.
    """
    from generators.core import GeneratorError
    from generators.inputs import load_circuits, parse_param_values
    from qrmi_tasks.errors import first_line

    circuits = [c for path in paths for c in load_circuits(path)]
    values = parse_param_values(param_values) if param_values is not None else None
    if values is not None and not any(c.num_parameters for c in circuits):
        raise GeneratorError("--param-values given but no circuit has parameters")
    pubs: list[tuple[Any, Any]] = []
    for circuit in circuits:
        if not circuit.num_parameters:
            pubs.append((circuit, None))
            continue
        names = ", ".join(p.name for p in circuit.parameters)
        if values is None:
            raise GeneratorError(
                f"circuit '{circuit.name}' has parameters ({names}); give their values "
                "with --param-values"
            )
        from qiskit.primitives.containers.sampler_pub import SamplerPub

        try:
            bindings = SamplerPub.coerce((circuit, values)).parameter_values
        except (TypeError, ValueError) as exc:
            raise GeneratorError(
                f"--param-values do not fit circuit '{circuit.name}' (parameters {names}): "
                f"{first_line(exc)}"
            ) from None
        shape = "x".join(map(str, bindings.shape)) or "1"
        click.echo(
            f"circuit '{circuit.name}': values bound in the order {names} ({shape} binding(s))",
            err=True,
        )
        pubs.append((circuit, bindings))
    return pubs


def _write(payload: Any, output: str | None, params_only: bool = False) -> None:
    written = payload.save(output, params_only=params_only)
    if written is not None:
        what = "parameters of a " if params_only else ""
        click.echo(f"wrote {what}{payload.describe()} to {written}", err=True)


# -- commands -----------------------------------------------------------------------------------
@cli.command(context_settings=_CONTEXT)
@click.argument("circuits", nargs=-1, required=True, metavar="CIRCUIT...")
@click.option("--shots", type=click.IntRange(min=1), help="Shots for every pub.")
@_target_options
@_output_options(primitive=True)
def sampler(
    circuits: tuple[str, ...],
    shots: int | None,
    target: str | None,
    resource: str | None,
    config: str | None,
    optimization_level: int,
    param_values: str | None,
    output: str | None,
    params_only: bool,
    support_qiskit: bool,
) -> None:
    """SamplerV2 payload: one pub per circuit (OpenQASM 2/3 or QPY files)."""
    from generators.primitives import sampler_payload

    pubs = [c if v is None else (c, v) for c, v in _circuits(circuits, param_values)]
    named = _target(target, resource, config)
    payload = sampler_payload(
        pubs,
        shots=shots,
        target=named,
        optimization_level=optimization_level,
        support_qiskit=support_qiskit,
    )
    _write(payload, output, params_only)


@cli.command(context_settings=_CONTEXT)
@click.argument("circuits", nargs=-1, required=True, metavar="CIRCUIT...")
@click.option(
    "--observable",
    "observables",
    multiple=True,
    required=True,
    metavar="PAULI|FILE",
    help='Observable, repeatable: ZZ, "0.5*ZZ+XI", or a JSON file {"ZZ": 0.5, ...}.',
)
@click.option("--precision", type=click.FloatRange(min=0, min_open=True), help="Target precision.")
@click.option("--default-shots", type=click.IntRange(min=1), help="options.default_shots.")
@click.option("--resilience-level", type=click.IntRange(0, 2), help="Resilience level 0-2.")
@_target_options
@_output_options(primitive=True)
def estimator(
    circuits: tuple[str, ...],
    observables: tuple[str, ...],
    precision: float | None,
    default_shots: int | None,
    resilience_level: int | None,
    target: str | None,
    resource: str | None,
    config: str | None,
    optimization_level: int,
    param_values: str | None,
    output: str | None,
    params_only: bool,
    support_qiskit: bool,
) -> None:
    """EstimatorV2 payload: one pub per circuit, each with every --observable."""
    from generators.inputs import parse_observable
    from generators.primitives import estimator_payload

    parsed = [parse_observable(text) for text in observables]
    pubs = []
    for circuit, bindings in _circuits(circuits, param_values):
        if bindings is None:
            pubs.append((circuit, parsed))
            continue
        # every observable for every binding: the observables get one axis of their own
        # in front of the bindings' (evs shape: observables x bindings)
        nested: list[Any] = list(parsed)
        for _ in bindings.shape:
            nested = [[o] for o in nested]
        pubs.append((circuit, nested, bindings))
    named = _target(target, resource, config)
    payload = estimator_payload(
        pubs,
        None,
        precision=precision,
        default_shots=default_shots,
        resilience_level=resilience_level,
        target=named,
        optimization_level=optimization_level,
        support_qiskit=support_qiskit,
    )
    _write(payload, output, params_only)


@cli.command(context_settings=_CONTEXT)
@click.argument("sequence", metavar="SEQUENCE")
@click.option("--runs", type=click.IntRange(min=1), required=True, help="Number of shots.")
@_output_options(primitive=False)
def pulser(sequence: str, runs: int, output: str | None) -> None:
    """Pulser payload from a JSON abstract representation or a Python file defining a
    pulser.Sequence named 'sequence' or 'seq'."""
    from generators.inputs import read_bytes, run_script
    from generators.sequences import pulser_payload

    if sequence.endswith(".py"):
        seq: Any = run_script(sequence, ("sequence", "seq"), "a pulser.Sequence")
    else:
        from generators.core import GeneratorError

        try:
            seq = json.loads(read_bytes(sequence, "sequence").decode("utf-8-sig"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise GeneratorError(
                f"{sequence} is not JSON (a Pulser abstract representation) nor a .py file: {exc}"
            ) from None
        if isinstance(seq, dict) and "sequence" in seq and "job_runs" in seq:
            seq = seq["sequence"]  # an existing payload: take its sequence
    _write(pulser_payload(seq, runs), output)


@cli.command(context_settings=_CONTEXT)
@click.argument("script", metavar="SCRIPT.py")
@click.option("--runs", type=click.IntRange(min=1), required=True, help="Number of shots.")
@click.option(
    "--device",
    default="AnalogDevice",
    show_default=True,
    help="Pulser device of pulser.devices to build the sequence for.",
)
@_output_options(primitive=False)
def qpp(script: str, runs: int, device: str, output: str | None) -> None:
    """Pulser payload from a Python file defining a Qiskit circuit ('circuit' or 'qc') with
    one HamiltonianGate of qiskit-pasqal-provider."""
    from generators.inputs import run_script
    from generators.sequences import qpp_payload

    circuit = run_script(script, ("circuit", "qc"), "a QuantumCircuit")
    _write(qpp_payload(circuit, runs, device), output)


def _input_param(text: str) -> tuple[str, Any]:
    """``NAME=VALUE`` of --param: VALUE as JSON (a number, true/false), else as text."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise click.BadParameter(f"{text!r} is not NAME=VALUE", param_hint="--param")
    try:
        return name.strip(), json.loads(value)
    except json.JSONDecodeError:
        return name.strip(), value


@cli.command("alice-bob", context_settings=_CONTEXT)
@click.argument("circuit", metavar="CIRCUIT")
@click.option("--shots", type=click.IntRange(min=1), help="Shots (input param nbShots).")
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="Another input param of the Felis target (e.g. averageNbPhotons=4); repeatable.",
)
@click.option(
    "-o",
    "--output",
    metavar="FILE",
    help="Where to write the payload ('-': stdout). Default: qir_input.json.",
)
def alice_bob(circuit: str, shots: int | None, params: tuple[str, ...], output: str | None) -> None:
    """Alice & Bob Felis payload (human-readable QIR) from one circuit (OpenQASM 2/3 or QPY),
    converted offline by qiskit-alice-bob-provider; Felis transpiles it for its target."""
    from generators.core import GeneratorError
    from generators.felis import felis_payload
    from generators.inputs import load_circuits

    circuits = load_circuits(circuit)
    if len(circuits) != 1:
        raise GeneratorError(f"{circuit} holds {len(circuits)} circuits; a Felis job runs one")
    input_params = dict(_input_param(p) for p in params)
    _write(felis_payload(circuits[0], shots, input_params), output)


@cli.command(context_settings=_CONTEXT)
@click.argument("circuits", nargs=-1, required=True, metavar="CIRCUIT...")
@click.option("--shots", type=click.IntRange(min=1), default=1024, show_default=True)
@click.option(
    "--job-type",
    type=click.Choice(["circuit"]),
    default="circuit",
    show_default=True,
    help="IQM Server job type ('run' and 'sweep' are pulse-level jobs, not built here).",
)
@click.option("--use-timeslot", is_flag=True, help="Submit to the quantum computer's timeslot.")
@click.option("--tag", help="The job's tag on IQM Server (at most 50 characters).")
@click.option(
    "--resource",
    metavar="NAME",
    help="An iqm-server resource: transpile for its dynamic quantum architecture (online).",
)
@click.option(
    "--calibration-set",
    metavar="ID",
    help="With --resource: that calibration set instead of the default one.",
)
@click.option("--config", metavar="FILE", envvar="QRMI_CONFIG", help="Resources file.")
@click.option("--optimization-level", type=click.IntRange(0, 3), default=1, show_default=True)
@click.option(
    "--params-only", is_flag=True, help="Write only the IQM job ('iqmjson'), not the payload."
)
@click.option(
    "-o",
    "--output",
    metavar="FILE",
    help="Where to write the payload ('-': stdout). Default: iqm_json_{resource}.json.",
)
def iqm(
    circuits: tuple[str, ...],
    shots: int,
    job_type: str,
    use_timeslot: bool,
    tag: str | None,
    resource: str | None,
    calibration_set: str | None,
    config: str | None,
    optimization_level: int,
    params_only: bool,
    output: str | None,
) -> None:
    """IQM Server payload (IQM JSON circuit job) from OpenQASM 2/3 or QPY circuits."""
    from generators.core import GeneratorError
    from generators.inputs import load_circuits
    from generators.iqm import iqm_payload, resource_architecture

    if tag is not None and len(tag) > 50:
        raise GeneratorError(f"--tag has {len(tag)} characters; IQM Server allows 50")
    if calibration_set and not resource:
        raise UsageError("--calibration-set needs --resource")
    batch = [c for path in circuits for c in load_circuits(path)]
    architecture = None
    if resource:
        architecture = resource_architecture(resource, config, calibration_set or "default")
    payload = iqm_payload(
        batch,
        shots=shots,
        job_type=job_type,
        use_timeslot=use_timeslot,
        tag=tag,
        architecture=architecture,
        optimization_level=optimization_level,
        backend=resource,
    )
    _write(payload, output, params_only)


@cli.command(context_settings=_CONTEXT)
@click.argument("payload", metavar="PAYLOAD")
@click.option(
    "--type",
    "type_name",
    metavar="RESOURCE_TYPE",
    help="Also check that resources of this type run this kind of payload "
    "(local, direct-access, qiskit-runtime-service, pasqal-cloud, ...).",
)
@click.option(
    "--resource",
    metavar="NAME",
    help="Make every check qrmi-task-runner makes before submitting to this configured "
    "resource (settings included); on a backend with a target (direct-access, "
    "qiskit-runtime-service) that fetches its target over the network to check the "
    "circuits (nothing is submitted).",
)
@click.option("--config", metavar="FILE", envvar="QRMI_CONFIG", help="Resources file.")
def validate(payload: str, type_name: str | None, resource: str | None, config: str | None) -> None:
    """Validate a payload file as qrmi-task-runner does (exit 0 valid, 2 invalid)."""
    from generators.validate import unchecked_note, validate_file

    checked = validate_file(payload, type_name, resource, config)
    note = "" if resource else unchecked_note(checked, type_name)
    click.echo(f"ok: {checked.source}: {checked.describe()}" + (f"; {note}" if note else ""))


def run(argv: list[str] | None = None) -> int:
    """``qrmi-gen ARGV`` in this process: its exit code (errors are one 'error:' line).

    All of :func:`main` but the exit, so tests can run the command in process.
    """
    with _warnings_as_lines():
        return run_command(cli, PROGRAM, argv, VERBOSE_HINT)


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``qrmi-gen``: errors are one 'error:' line and an exit code."""
    exit_with(run(argv))
