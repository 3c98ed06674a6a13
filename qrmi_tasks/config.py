"""Resources and their settings, from the environment and an optional JSON config file.

Resource list: ``QRMI_JOB_QPU_RESOURCES`` / ``QRMI_JOB_QPU_TYPES``, falling back to
``SLURM_JOB_QPU_RESOURCES`` / ``SLURM_JOB_QPU_TYPES`` (each list on its own), split on
``QRMI_LIST_DELIMITER``. Per-resource settings: ``{NAME}_{PREFIX}{SETTING}`` (for example
``ibm_marrakesh_QRMI_IBM_QS_ENDPOINT``, or under the type's older prefix
``..._QRMI_IBM_DA_ENDPOINT`` when that is unset) from the process environment, which wins
over the ``environment`` block of the resource in the config file (Slurm QRMI plugin format).
"""

from __future__ import annotations

import ipaddress
import logging
import os
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from qrmi_tasks.errors import ConfigError
from qrmi_tasks.readers import CONFIG_LIMIT, decode_json, read_text_input

log = logging.getLogger("qrmi_tasks.config")

LOCAL_RESOURCE = "local"
CONFIG_ENV = "QRMI_CONFIG"


@dataclass(frozen=True)
class ResourceType:
    """One accepted value of ``*_QPU_TYPES`` and where its resources' settings are read.

    Declared by the vendor package that serves it
    (:class:`qrmi_tasks.providers.declaration.ProviderDeclaration`); this module only reads
    resources, so it is handed the lookup (:func:`resolve_resource`'s ``types``).
    """

    name: str  # as written in QRMI_JOB_QPU_TYPES / SLURM_JOB_QPU_TYPES
    prefix: str  # settings are read from {resource}_{prefix}{SETTING}
    #: earlier prefixes of the same variables (qrmi renamed ``QRMI_IBM_QRS_`` to
    #: ``QRMI_IBM_QCS_``), read in this order when the current name is unset
    older_prefixes: tuple[str, ...] = ()

    @property
    def prefixes(self) -> tuple[str, ...]:
        """Every accepted prefix, the current one first."""
        return (self.prefix, *self.older_prefixes)


@dataclass(frozen=True)
class Setting:
    """A per-resource setting a provider reads.

    ``name`` is appended to the type's prefix (``ENDPOINT`` -> ``QRMI_IBM_DA_ENDPOINT``)
    unless ``prefixed`` is false, in which case it is the whole variable name after
    ``{NAME}_`` (``QRMI_JOB_TIMEOUT_SECONDS``). ``aliases`` are read when the setting
    itself is unset, in order (the vendor packages' ``qrmi_variables`` say which are qrmi's).
    """

    name: str
    required: bool = True
    secret: bool = False
    prefixed: bool = True
    parse: Callable[[str], Any] | None = None
    default: Any = None
    #: other variables read, in this order, when this one is unset (qrmi's spelling of the
    #: same setting, or our own older name); each follows its own ``prefixed``/``shared``
    aliases: tuple[Setting, ...] = ()
    #: the variable is process-wide, read without the ``{NAME}_`` prefix (qrmi reads
    #: ``PASQAL_USERNAME`` like that)
    shared: bool = False


def positive_int(text: str) -> int:
    """Parse a positive integer setting."""
    try:
        value = int(text.strip())
    except ValueError:
        raise ValueError("must be a positive integer") from None
    if value <= 0:
        raise ValueError("must be a positive integer")
    return value


def http_url(text: str) -> str:
    """Parse an http(s) URL setting (an endpoint)."""
    value = text.strip()
    if not value.lower().startswith(("http://", "https://")):
        raise ValueError("must be an http(s) URL")
    return value


def one_of(*choices: str) -> Callable[[str], str]:
    """A parser accepting one of ``choices`` (any case); returns it in lower case."""
    expected = " or ".join(choices) if len(choices) == 2 else "one of " + ", ".join(choices)

    def parse(text: str) -> str:
        value = text.strip().lower()
        if value not in choices:
            raise ValueError(f"must be {expected}")
        return value

    return parse


def positive_seconds(text: str) -> float:
    """Parse a positive, finite number of seconds."""
    try:
        value = float(text.strip())
    except ValueError:
        raise ValueError("must be a positive number of seconds") from None
    if not 0 < value < float("inf"):
        raise ValueError("must be a positive number of seconds")
    return value


#: After submission, how long the runner rides out a provider that does not answer
#: (connection refused, timeouts, 5xx, 429) before it gives up with exit 3.
DEFAULT_OUTAGE_GRACE = 900.0
#: Settings the runner itself reads for every resource type: per resource
#: ``{NAME}_QRMI_...``, else process-wide ``QRMI_...``.
#: While a task waits or runs with no news, the runner says so at the default log level
#: this often (a batch log that is silent for hours looks like a hang).
DEFAULT_HEARTBEAT = 300.0


#: the default of QRMI_MAX_RESULT_BYTES: 4 GiB
DEFAULT_MAX_RESULT_BYTES = 4 << 30


def _runner_setting(
    name: str, default: Any, parse: Callable[[str], Any] = positive_seconds
) -> Setting:
    """A runner setting: ``{name}_NAME`` for one resource, else ``NAME`` for all."""
    return Setting(
        name,
        required=False,
        prefixed=False,
        parse=parse,
        default=default,
        aliases=(Setting(name, prefixed=False, shared=True),),
    )


RUNNER_SETTINGS: tuple[Setting, ...] = (
    _runner_setting("QRMI_OUTAGE_GRACE_SECONDS", DEFAULT_OUTAGE_GRACE),
    _runner_setting("QRMI_HEARTBEAT_SECONDS", DEFAULT_HEARTBEAT),
    # Before submitting a Qiskit payload to a backend with a target (direct-access,
    # qiskit-runtime-service): are its circuits ISA and small enough? "off" skips the
    # backend-documents request and the qiskit import (about two seconds).
    _runner_setting("QRMI_CHECK_TARGET", "on", one_of("on", "off")),
    # A result larger than this is not downloaded further (a result is streamed to the
    # output file, so memory is not the limit: a broken or hostile service's endless body is)
    _runner_setting("QRMI_MAX_RESULT_BYTES", DEFAULT_MAX_RESULT_BYTES, positive_int),
)


@dataclass(frozen=True)
class Resource:
    """A QPU resource: its name, type, and where its settings come from."""

    name: str
    type: ResourceType
    file_environment: Mapping[str, str] = field(default_factory=dict)
    environ: Mapping[str, str] = field(default_factory=dict)

    @property
    def variable_prefix(self) -> str:
        """What this resource's own variables start with: ``ibm_x_QRMI_IBM_DA_``."""
        return f"{self.name}_{self.type.prefix}"

    def suffix(self, setting: Setting) -> str:
        """``setting``'s variable name without ``{NAME}_`` (the config file's key)."""
        if setting.shared or not setting.prefixed:
            return setting.name
        return f"{self.type.prefix}{setting.name}"

    def variable(self, setting: Setting) -> str:
        """Full environment variable name of ``setting`` for this resource."""
        suffix = self.suffix(setting)
        return suffix if setting.shared else f"{self.name}_{suffix}"

    def suffixes(self, setting: Setting) -> list[str]:
        """Every ``{NAME}_``-relative name ``setting`` is read under: the type's current
        prefix first, then its older ones (one name for unprefixed and shared settings)."""
        if setting.shared or not setting.prefixed:
            return [setting.name]
        return [f"{prefix}{setting.name}" for prefix in self.type.prefixes]

    def _values(self, setting: Setting) -> list[tuple[str, str]]:
        """``(variable, text)`` under each of ``setting``'s own names that is set (not its
        aliases), current prefix first; the process environment wins over the file."""
        found = []
        for suffix in self.suffixes(setting):
            variable = suffix if setting.shared else f"{self.name}_{suffix}"
            value = self.environ.get(variable)
            if value is None:
                value = self.file_environment.get(suffix)
            if value is not None and value.strip() != "":
                found.append((variable, value))
        return found

    def found(self, setting: Setting) -> tuple[str, str] | None:
        """``(variable, text)`` of the first of ``setting`` and its aliases that is set.

        Each name is looked up in the process environment first, then in the config file;
        under the type's current prefix first, then its older ones. When both a current and
        an older name are set to different values, the current one wins, with a warning.
        """
        for candidate in (setting, *setting.aliases):
            hits = self._values(candidate)
            if not hits:
                continue
            _warn_if_conflicting(hits)
            return hits[0]
        return None

    def source(self, setting: Setting) -> str:
        """The variable ``setting`` was read from (an older name or an alias when that is
        what was set), else its current name: what a message tells the user to check."""
        hit = self.found(setting)
        return self.variable(setting) if hit is None else hit[0]

    def raw(self, setting: Setting) -> str | None:
        """The setting's text (or its first alias that is set); None when unset or blank."""
        hit = self.found(setting)
        return None if hit is None else hit[1]

    def describe(self, setting: Setting) -> str:
        """The setting's variable for messages, with its older names and aliases:
        ``A (or B, C)``."""
        names = [
            name if candidate.shared else f"{self.name}_{name}"
            for candidate in (setting, *setting.aliases)
            for name in self.suffixes(candidate)
        ]
        if len(names) == 1:
            return names[0]
        return f"{names[0]} (or {', '.join(names[1:])})"

    def settings(self, spec: tuple[Setting, ...]) -> dict[str, Any]:
        """Resolve every setting in ``spec``; one error lists every missing or bad variable."""
        values: dict[str, Any] = {}
        missing: list[str] = []
        invalid: list[str] = []
        for setting in spec:
            hit = self.found(setting)
            if hit is None:
                if setting.required:
                    missing.append(self.describe(setting))
                values[setting.name] = setting.default
                continue
            variable, text = hit
            if _is_url_setting(setting.name):
                _warn_if_cleartext(variable, text.strip())
            if setting.parse is None:
                values[setting.name] = text.strip()
                continue
            try:
                values[setting.name] = setting.parse(text)
            except ValueError as exc:
                shown = "(hidden)" if setting.secret else repr(text)
                invalid.append(f"{variable} {exc} (got {shown})")
        problems = []
        if missing:
            problems.append(
                f"resource '{self.name}' ({self.type.name}) is missing "
                f"{'variable' if len(missing) == 1 else 'variables'}: {', '.join(missing)}"
            )
        problems.extend(invalid)
        if problems:
            raise ConfigError("; ".join(problems))
        return values

    def secret_values(self, spec: tuple[Setting, ...]) -> list[str]:
        """The values of secret settings (and of their aliases), so the log filter can mask them."""
        values = []
        for setting in spec:
            if setting.secret:
                for candidate in (setting, *setting.aliases):
                    # every name that is set: an older name's value is masked too
                    values.extend(text for _, text in self._values(candidate))
        return values


# (current, older) variable pairs already warned about: settings are resolved more than once
_CONFLICTS_WARNED: set[tuple[str, str]] = set()


def _warn_if_conflicting(hits: list[tuple[str, str]]) -> None:
    """Both a current and an older name of one setting are set: say which wins, if they
    differ (names only, never values)."""
    current, text = hits[0]
    for older, other in hits[1:]:
        if other.strip() != text.strip() and (current, older) not in _CONFLICTS_WARNED:
            _CONFLICTS_WARNED.add((current, older))
            log.warning(
                "%s and %s (its older name) are both set and differ; using %s",
                current,
                older,
                current,
            )


def _is_url_setting(name: str) -> bool:
    # ENDPOINT, IAM_ENDPOINT, S3_ENDPOINT_FOR_DAAPI, ACCOUNT_ENDPOINT, *_BASE_URL, ...
    return "ENDPOINT" in name or name.endswith("URL")


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve anywhere


def _warn_if_cleartext(variable: str, url: str) -> None:
    """Warn (not fail: test and private deployments use it) about plain http to another host.

    Tokens, API keys and presigned URLs would cross the network unencrypted.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return  # not a URL at all: the provider says what it expects
    if parts.scheme.lower() == "http" and host and not _is_loopback(host):
        log.warning(
            "%s uses plain http:// to %s: credentials and data would travel unencrypted; "
            "use https://",
            variable,
            host,
        )


def _duplicates(names: list[str]) -> list[str]:
    return sorted(name for name, count in Counter(names).items() if count > 1)


def _split(text: str, delimiter: str) -> list[str]:
    return [item.strip() for item in text.split(delimiter)]


def _job_list(environ: Mapping[str, str], kind: str) -> tuple[str, str] | None:
    """``(variable, text)`` of ``QRMI_JOB_QPU_{kind}``, else ``SLURM_JOB_QPU_{kind}``.

    Each list falls back on its own, as qrmi's ``get_job_qpu_resources_and_types`` reads
    them (qrmi 0.26.4 ``qrmi/__init__.py``): the QRMI_ resources may go with the SLURM_
    types.
    """
    for variable in (f"QRMI_JOB_QPU_{kind}", f"SLURM_JOB_QPU_{kind}"):
        text = environ.get(variable)
        if text is not None:
            return variable, text
    return None


def _env_resources(environ: Mapping[str, str]) -> list[tuple[str, str]]:
    found_names = _job_list(environ, "RESOURCES")
    found_types = _job_list(environ, "TYPES")
    if found_names is None and found_types is None:
        return []
    names_var, names_text = found_names or ("QRMI_JOB_QPU_RESOURCES", "")
    types_var, types_text = found_types or ("QRMI_JOB_QPU_TYPES", "")
    delimiter = environ.get("QRMI_LIST_DELIMITER") or ","
    names = _split(names_text, delimiter)
    types = _split(types_text, delimiter)
    if names == [""]:
        names = []
    if types == [""]:
        types = []
    if len(names) != len(types):
        raise ConfigError(
            f"{names_var} lists {len(names)} resource(s) but {types_var} lists "
            f"{len(types)} type(s); give one type per resource, separated by '{delimiter}'"
        )
    if any(not n for n in names) or any(not t for t in types):
        raise ConfigError(
            f"{names_var} / {types_var} contain an empty entry; "
            f"separate entries with '{delimiter}' (QRMI_LIST_DELIMITER)"
        )
    duplicates = _duplicates(names)
    if duplicates:
        raise ConfigError(
            f"{names_var} names {', '.join(map(repr, duplicates))} more than once; "
            "list each resource once"
        )
    return list(zip(names, types, strict=True))


def _file_resources(path: Path) -> list[tuple[str, str, dict[str, str]]]:
    text = read_text_input(path, "config", CONFIG_LIMIT, ConfigError)
    data = decode_json(text, f"config file {path}", ConfigError)
    entries = data.get("resources") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise ConfigError(
            f"config file {path} must be an object with a 'resources' list "
            '(e.g. {"resources": [{"name": ..., "type": ..., "environment": {...}}]})'
        )
    found = []
    for index, entry in enumerate(entries):
        where = f"config file {path}: resources[{index}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where} must be an object")
        name, rtype, env = entry.get("name"), entry.get("type"), entry.get("environment", {})
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"{where} needs a non-empty string 'name'")
        if not isinstance(rtype, str) or not rtype.strip():
            raise ConfigError(f"{where} ('{name}') needs a string 'type'")
        if not isinstance(env, dict) or not all(
            isinstance(k, str) and isinstance(v, str | int | float) for k, v in env.items()
        ):
            raise ConfigError(f"{where} ('{name}'): 'environment' must map names to strings")
        found.append((name.strip(), rtype.strip(), {k: str(v) for k, v in env.items()}))
    duplicates = _duplicates([name for name, _, _ in found])
    if duplicates:
        raise ConfigError(
            f"config file {path} lists the resource {', '.join(map(repr, duplicates))} more "
            "than once; keep one entry per resource"
        )
    return found


def resolve_resource(
    name: str,
    environ: Mapping[str, str] | None,
    config_path: str | os.PathLike[str] | None,
    types: Callable[[str], ResourceType],
) -> Resource:
    """Find resource ``name`` in the config file and the environment.

    ``types`` looks a type name up (ConfigError when unknown): the provider registry's
    :func:`qrmi_tasks.providers.registry.resource_type`. ``local`` is the embedded local
    simulator unless a configured resource is named ``local``.
    """
    environ = os.environ if environ is None else environ
    if config_path is None and environ.get(CONFIG_ENV):
        config_path = environ[CONFIG_ENV]

    names: dict[str, str] = {}  # resource -> type name
    file_env: dict[str, dict[str, str]] = {}
    if config_path is not None:
        for rname, rtype, env in _file_resources(Path(config_path)):
            names[rname] = rtype
            file_env[rname] = env
    for rname, rtype in _env_resources(environ):
        names[rname] = rtype  # the process environment overrides the file

    if name == LOCAL_RESOURCE and name not in names:
        # the embedded simulator is on every node, whatever QPUs the job was given; only
        # a configured resource of that name (another type) takes the name over
        return Resource(name, types(LOCAL_RESOURCE), {}, environ)
    if name not in names:
        if not names:
            raise ConfigError(
                f"no QPU resources are configured (set SLURM_JOB_QPU_RESOURCES and "
                f"SLURM_JOB_QPU_TYPES, or --config FILE); '{name}' is unknown. "
                f"Use '{LOCAL_RESOURCE}' for the embedded simulator"
            )
        raise ConfigError(
            f"resource '{name}' is not configured; available: {', '.join(sorted(names))}"
        )
    return Resource(name, types(names[name]), file_env.get(name, {}), environ)
