"""The one config system of ``train``, ``distill`` and ``eval-looks``: frozen dataclasses, presets,
YAML files, ``--set key=value`` overrides and ``--dry-run``.

Each command is described completely by one frozen dataclass (:class:`TrainConfig`,
:class:`DistillConfig`, ``benchmarks.cli_eval.EvalLooksConfig``), resolved by one code path,
:func:`resolve_config`: a preset (``tiny`` for tests, ``cpu`` for a laptop, ``gpu`` for one modern
GPU; or, on ``--resume``, the run's saved config), then an optional YAML file, then ``--set``
overrides in order, then the command-line shortcuts (``--steps``...), then :func:`validate`.
:func:`add_config_arguments` gives every command the same ``--preset``, ``--config``, ``--set``
and ``--dry-run``; :func:`config_to_yaml` is what ``--dry-run`` prints and what a run saves as
``RUN/config.yaml`` (training runs also keep it in every checkpoint's ``meta.json``).

One module per concern, all re-exported here:

- :mod:`~styleforge.train.config.schema`: the dataclasses and the values they accept (the colour
  generator's knobs in ``model.colour`` and ``loss.colour``);
- :mod:`~styleforge.train.config.presets`: the measured presets of both generator families and of
  distillation;
- :mod:`~styleforge.train.config.resolve`: preset -> YAML -> ``--set`` -> shortcuts -> validated,
  and back to YAML;
- :mod:`~styleforge.train.config.arguments`: the shared argparse flags.
"""

from styleforge.train.config.arguments import add_config_arguments
from styleforge.train.config.presets import (
    COLOUR_PRESETS,
    DISTILL_PRESETS,
    PAIRED_COLOUR_LR_G,
    PAIRED_COLOUR_STEPS,
    PRESETS,
    RESNET_PRESETS,
    preset,
    preset_config,
)
from styleforge.train.config.resolve import (
    apply_override,
    config_from_dict,
    config_to_dict,
    config_to_yaml,
    load_config,
    parse_override,
    read_yaml,
    resolve_config,
    validate,
)
from styleforge.train.config.schema import (
    AUTO,
    COLOUR_INITS,
    DEVICES,
    GAN_LOSSES,
    MODES,
    MOVED_KEYS,
    PRESET_NAMES,
    STRUCTURAL_LOSSES,
    STUDENTS,
    ColourLossConfig,
    ColourModelConfig,
    Config,
    ConfigError,
    DataConfig,
    DistillConfig,
    LogConfig,
    LossConfig,
    LutConfig,
    ModelConfig,
    OptimConfig,
    TrainConfig,
)

__all__ = [
    "AUTO", "COLOUR_INITS", "COLOUR_PRESETS", "DEVICES", "DISTILL_PRESETS", "GAN_LOSSES", "MODES",
    "MOVED_KEYS", "PAIRED_COLOUR_LR_G", "PAIRED_COLOUR_STEPS", "PRESETS", "PRESET_NAMES", "RESNET_PRESETS", "STRUCTURAL_LOSSES",
    "STUDENTS", "ColourLossConfig", "ColourModelConfig", "Config", "ConfigError", "DataConfig",
    "DistillConfig", "LogConfig", "LossConfig", "LutConfig", "ModelConfig", "OptimConfig", "TrainConfig",
    "add_config_arguments", "apply_override", "config_from_dict", "config_to_dict", "config_to_yaml",
    "load_config", "parse_override", "preset", "preset_config", "read_yaml", "resolve_config", "validate",
]
