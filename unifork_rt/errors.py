"""User-facing errors.

Every error a user can cause (bad input, a broken model folder, a missing optional package)
is a `UniforkError`: the CLI prints its message on one line and exits non-zero, without a
traceback. Messages say what is wrong and how to fix it.
"""


class UniforkError(Exception):
    """An error the user can fix; its message names the problem and the fix."""


class ConfigError(UniforkError):
    """An inconsistent or malformed model configuration."""


class ModelFolderError(UniforkError):
    """A missing, malformed or mismatched model folder, checkpoint or graph bundle."""


class InputError(UniforkError):
    """Bad user input: an image, a prompt or an option value."""


class MissingDependencyError(UniforkError):
    """An optional package (torch, tensorrt, ...) that this command needs is not installed."""


def require(module: str, extra: str, purpose: str):
    """Import an optional module, or raise a MissingDependencyError naming the extra to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingDependencyError(
            f"{purpose} needs the '{module}' package, which is not installed ({e}); "
            f"install it with: pip install 'unifork-rt[{extra}]'"
        ) from None
