"""One code path from a preset to a validated config: YAML files, ``--set key=value`` overrides,
the command-line shortcuts, and back out as the YAML ``--dry-run`` prints and a run saves.

:func:`resolve_config` applies, in order: the base (a preset, or a resumed run's saved config),
an optional YAML file, ``a.b=c`` overrides, the shortcuts (a partial nested dict from flags such
as ``--steps``), then :func:`validate`. :func:`config_from_dict` rejects unknown keys and values of
the wrong type, and maps the keys that moved into a colour sub-config
(:data:`~styleforge.train.config.schema.MOVED_KEYS`: ``model.init`` is ``model.colour.init``), so
saved run configs and the YAML / ``--set`` keys written before the move still load.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import fields, replace
from pathlib import Path
from typing import Any, Optional, Sequence, Union

from styleforge.train.config.presets import preset_config
from styleforge.train.config.schema import MOVED_KEYS, Config, ConfigError, TrainConfig


def resolve_config(
    base: Config,
    yaml_path: Union[str, Path, None] = None,
    overrides: Sequence[str] = (),
    shortcuts: Optional[dict[str, Any]] = None,
    section: Optional[str] = None,
) -> Config:
    """``base`` (a preset, or a resumed run's saved config), then the YAML file (its ``section:``
    mapping when it has one), then ``a.b=c`` overrides in order, then ``shortcuts`` (a partial
    nested dict from command-line flags); validated."""
    config = base
    if yaml_path is not None:
        data = read_yaml(yaml_path)
        config = config_from_dict(data.get(section, data) if section else data, base=config)
    for text in overrides:
        config = apply_override(config, text)
    if shortcuts:
        config = config_from_dict(shortcuts, base=config)
    validate(config)
    return config


def load_config(
    preset: str = "cpu",
    yaml_path: Union[str, Path, None] = None,
    overrides: Optional[list[str]] = None,
    generator: Optional[str] = None,
) -> TrainConfig:
    """A training config: :func:`preset_config` through :func:`resolve_config`."""
    return resolve_config(preset_config(preset, generator), yaml_path, overrides or ())


def validate(config) -> None:
    """Reject values that cannot work, with a message that names the key (the config's ``checks()``)."""
    for ok, message in config.checks():
        if not ok:
            raise ConfigError(message)


def config_to_dict(config) -> dict[str, Any]:
    """Plain nested dict (YAML/JSON-ready: tuples become lists) of a config."""
    def plain(value):
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return list(map(plain, value)) if isinstance(value, (tuple, list)) else value

    return plain(dataclasses.asdict(config))


def config_from_dict(data: dict[str, Any], base=None):
    """Apply a (possibly partial) nested dict onto ``base`` (default ``TrainConfig()``); unknown
    keys and values of the wrong type raise :class:`ConfigError`."""
    return _merge(TrainConfig() if base is None else base, data, prefix="")


def _merge(obj: Any, data: dict[str, Any], prefix: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: expected a mapping, got {data!r}")
    data = _nest_moved_keys(obj, data)
    known = {f.name: f for f in fields(obj)}
    hints = typing.get_type_hints(type(obj))
    changes = {}
    for key, value in data.items():
        if key not in known:
            raise ConfigError(f"unknown config key '{prefix}{key}'; known: {', '.join(known)}")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            changes[key] = _merge(current, value, prefix=f"{prefix}{key}.")
        elif isinstance(current, dict):
            if not isinstance(value, dict):
                raise ConfigError(f"{prefix}{key}: expected a mapping, got {value!r}")
            changes[key] = dict(value)  # kwargs dicts are replaced whole, not merged
        else:
            changes[key] = _coerce(value, current, f"{prefix}{key}", hints[key])
    return replace(obj, **changes)


def _nest_moved_keys(obj: Any, data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with the keys that moved into a sub-config of ``obj``'s class (:data:`MOVED_KEYS`)
    nested under it: ``{"shrink": 1}`` on a ModelConfig is ``{"colour": {"shrink": 1}}``."""
    moved = MOVED_KEYS.get(type(obj), {})
    if not any(key in moved for key in data):
        return data
    out = {key: value for key, value in data.items() if key not in moved}
    for key, value in data.items():
        if key in moved:
            section = out.get(moved[key], {})
            out[moved[key]] = {**section, key: value} if isinstance(section, dict) else section
    return out


def _coerce(value: Any, current: Any, name: str, hint: Any) -> Any:
    """Give ``value`` the field's type (YAML may say 1 for 1.0; a tuple may come as ``a,b``)."""
    if isinstance(current, tuple):
        if isinstance(value, str):  # "a,b" from a flag or --set: each item read as YAML
            import yaml

            value = [yaml.safe_load(v) for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{name}: expected a list, got {value!r}")
        kinds = typing.get_args(hint)  # (float, float) or (int, Ellipsis)
        if len(kinds) == 2 and kinds[1] is Ellipsis:
            kinds = (kinds[0],) * len(value)
        if len(kinds) != len(value):
            raise ConfigError(f"{name}: expected {len(kinds)} values, got {value!r}")
        return tuple(_coerce(v, kind(), f"{name}[{i}]", kind) for i, (v, kind) in enumerate(zip(value, kinds)))
    if isinstance(current, bool):
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{name}: expected true/false, got {value!r}")
    if isinstance(current, (int, float)) and not isinstance(value, bool):
        try:
            converted = type(current)(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{name}: expected a number, got {value!r}") from None
        if isinstance(current, int) and converted != value:
            raise ConfigError(f"{name}: expected an integer, got {value!r}")
        return converted
    if isinstance(current, str):
        return "" if value is None else str(value)
    raise ConfigError(f"{name}: cannot set to {value!r}")


def parse_override(text: str) -> dict[str, Any]:
    """``"a.b=c"`` -> ``{"a": {"b": c}}`` with ``c`` parsed as YAML (numbers, booleans, lists, mappings)."""
    import yaml

    if "=" not in text:
        raise ConfigError(f"override {text!r} is not of the form key.path=value")
    path, raw = text.split("=", 1)
    keys = [k for k in path.strip().split(".") if k]
    if not keys:
        raise ConfigError(f"override {text!r} has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as err:
        raise ConfigError(f"override {text!r}: the value is not valid YAML ({err})") from None
    return _nest(keys, value)


def _nest(keys: list[str], value: Any) -> dict[str, Any]:
    for key in reversed(keys):
        value = {key: value}
    return value


def apply_override(config: Config, text: str) -> Config:
    """Apply one ``a.b=c`` override (see :func:`parse_override`) to ``config``.

    A path into a dict field (``model.generator_kwargs.ngf=16``) sets that one entry and keeps
    the others; everything else replaces the value it names.
    """
    patch = parse_override(text)
    keys = [k for k in text.split("=", 1)[0].strip().split(".") if k]
    holder = config
    for key in keys[:-1]:
        holder = getattr(holder, key, None) if dataclasses.is_dataclass(holder) else None
    if len(keys) >= 2 and isinstance(holder, dict):
        value = patch
        for key in keys:
            value = value[key]
        patch = _nest(keys[:-1], {**holder, keys[-1]: value})
    return config_from_dict(patch, base=config)


def read_yaml(path: Union[str, Path]) -> dict[str, Any]:
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def config_to_yaml(config, section: Optional[str] = None, context: Optional[dict[str, Any]] = None) -> str:
    """The YAML that ``--dry-run`` prints and a run saves: the config at the top level, or under
    ``section:`` after the ``context`` (e.g. the teacher and folders of a distillation)."""
    import yaml

    data = config_to_dict(config)
    if section is not None:
        data = {**(context or {}), section: data}
    return yaml.safe_dump(data, sort_keys=False)
