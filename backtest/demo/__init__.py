"""The bundled example: a seeded crash market (``generate``) and its calibration check against real data
(``calibration``, which reads ../shared/data). Everything public of both is available from here."""

from .calibration import calibration_report, default_shared_data_dir, measure_calibration, used_calibration  # noqa: F401
from .generate import *  # noqa: F401,F403
from .generate import demo_config_text, write_demo_inputs  # noqa: F401  (named for readers and linters)
