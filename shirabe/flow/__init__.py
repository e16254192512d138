"""Flow matching: interpolation paths, the Euler solver with a time shift, guidance."""

from shirabe.flow.euler import euler_solve, shifted_time_steps
from shirabe.flow.guidance import apply_cfg
from shirabe.flow.paths import linear_path, linear_velocity_target

__all__ = ["apply_cfg", "euler_solve", "linear_path", "linear_velocity_target", "shifted_time_steps"]
