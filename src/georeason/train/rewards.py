"""Adapters between georeason's reward functions and TRL's GRPO trainer."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any


def with_id_logging(reward_fn: Callable[..., Any], column: str = "id") -> Callable[..., Any]:
    """Wrap a TRL reward function so it also logs the batch's sample ids.

    TRL passes every dataset column and a ``log_extra(column, values)`` callback to
    reward functions; this wrapper calls ``log_extra(column, ids)`` then the wrapped
    function, so ``log_completions`` tables gain an id column that
    :func:`georeason.pipelines.select.convert_trl_completions` groups by. The name is
    kept (TRL names the reward's log columns after it).

    >>> logged = {}
    >>> f = with_id_logging(lambda completions, **kw: [1.0] * len(completions))
    >>> f(["a", "b"], id=[7, 8], log_extra=lambda c, v: logged.setdefault(c, v))
    [1.0, 1.0]
    >>> logged
    {'id': ['7', '8']}
    """

    @functools.wraps(reward_fn)
    def wrapped(completions: Any, **kwargs: Any) -> Any:
        log_extra = kwargs.get("log_extra")
        if callable(log_extra) and kwargs.get(column) is not None:
            log_extra(column, [str(x) for x in kwargs[column]])
        return reward_fn(completions, **kwargs)

    return wrapped


__all__ = ["with_id_logging"]
