"""What the commands share: naming a missing extra before any work starts
(:func:`require`, :func:`require_backend`) and writing JSON (:func:`to_json`).

Commands import this module, never :mod:`georeason.cli` (which imports the commands to
build the app); the root group there turns a :func:`require` failure into one line
naming the extra to install (:func:`missing_module_message`).
"""

from __future__ import annotations

import importlib.util
from typing import Any

# --- missing extras -------------------------------------------------------------

#: The optional dependency groups of pyproject.toml and the top-level modules each one
#: brings; a missing module is explained by naming its extra (:func:`extra_for`).
EXTRAS: dict[str, tuple[str, ...]] = {
    "train": (
        "torch",
        "torchvision",
        "transformers",
        "trl",
        "peft",
        "accelerate",
        "datasets",
        "tokenizers",
        "PIL",
        "matplotlib",
    ),
    "serve": ("fastapi", "uvicorn", "multipart", "python_multipart", "httpx", "openai", "PIL"),
    "vllm": ("vllm",),
}


def extra_for(module: str, prefer: str | None = None) -> str | None:
    """The extra that installs ``module`` (``"PIL.Image"`` -> ``"train"``), or None.

    A module in several extras (PIL) is credited to ``prefer`` when that extra has it.

    >>> extra_for("torch.nn"), extra_for("PIL", prefer="serve"), extra_for("numpy")
    ('train', 'serve', None)
    """
    top = module.split(".")[0]
    if prefer in EXTRAS and top in EXTRAS[prefer]:
        return prefer
    return next((name for name, mods in EXTRAS.items() if top in mods), None)


#: What each inference backend imports (``--backend``), checked before a model loads.
BACKEND_MODULES: dict[str, tuple[tuple[str, ...], str]] = {
    "hf": (("torch", "transformers", "PIL"), "train"),
    "openai": (("httpx", "PIL"), "serve"),
    "vllm": (("vllm", "PIL"), "vllm"),
}


def missing_module_message(exc: ImportError, command: str = "") -> str:
    """One sentence for an ImportError: which extra to install, when one has the module."""
    name = getattr(exc, "name", None) or ""
    what = f"georeason {command}".strip()
    prefer = getattr(exc, "extra", None) or ("serve" if command.split(" ")[0] == "serve" else None)
    extra = extra_for(name, prefer=prefer) if name else None
    if extra is not None and isinstance(exc, ModuleNotFoundError):
        return (
            f"{what} needs the '{extra}' extra (Python module {name.split('.')[0]!r} is not installed): "
            f'pip install "georeason[{extra}]" (from a clone: pip install -e ".[{extra}]")'
        )
    text = str(exc)
    if "pip install" in text:  # the message says what to install already
        return text
    return f"{text}; install the missing package, or reinstall georeason with the extra this command needs"


def require(*modules: str, extra: str | None = None) -> None:
    """Raise ModuleNotFoundError for the first of ``modules`` that is not installed, before
    any work starts; the CLI turns it into "install the '<extra>' extra" (``extra`` names
    the one to suggest for a module in several, e.g. PIL)."""
    for module in modules:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):  # a parent package missing, or a None in sys.modules
            found = False
        if not found:
            err = ModuleNotFoundError(f"No module named {module!r}", name=module)
            err.extra = extra  # type: ignore[attr-defined]
            raise err


def require_backend(backend: str) -> None:
    """:func:`require` the modules of an inference backend (unknown names are left to it)."""
    modules, extra = BACKEND_MODULES.get(backend.strip().lower(), ((), ""))
    require(*modules, extra=extra or None)


# --- JSON -------------------------------------------------------------------------


def to_json(obj: Any, *, indent: int | None = None) -> str:
    """JSON text that every parser accepts (:func:`georeason.jsonsafe.dumps`): NaN and ±inf
    become ``null``, numpy values plain numbers, paths strings, anything else unknown its ``str``.

    >>> to_json({"city_lat": float("nan"), "n": 2})
    '{"city_lat": null, "n": 2}'
    """
    from georeason.jsonsafe import dumps

    return dumps(obj, indent=indent)
