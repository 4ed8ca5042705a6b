"""genre's launchers under the names Hydra accepts (only classes in ``hydra_plugins`` can be launchers).

The code lives in :mod:`genre.sweeps.jobs.isolated_launcher`; ``genre/conf/hydra/launcher/joblib.yaml``
names this class, so ``hydra/launcher=joblib`` uses it. Keep this free of heavy imports.
"""

from genre.sweeps.jobs.isolated_launcher import IsolatedJoblibLauncher as _IsolatedJoblibLauncher


class IsolatedJoblibLauncher(_IsolatedJoblibLauncher):
    """:class:`genre.sweeps.jobs.isolated_launcher.IsolatedJoblibLauncher`: joblib's parallel jobs, one process each,
    so that a killed job does not end the sweep."""
