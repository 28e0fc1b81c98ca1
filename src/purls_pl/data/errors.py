"""The error every reader and the preprocessing raise for one unusable sample: the file, what is wrong, the fix."""

from __future__ import annotations

from pathlib import Path

__all__ = ["SampleError", "SampleMissingError"]


class SampleError(ValueError):
    """One sample (file) cannot be used: ``path``, what is wrong (``problem``) and the ``fix``."""

    def __init__(self, path: str | Path, problem: str, fix: str) -> None:
        super().__init__(str(path), problem, fix)
        self.path, self.problem, self.fix = str(path), problem, fix

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}; {self.fix}"


class SampleMissingError(SampleError, FileNotFoundError):
    """A sample file that the index lists does not exist."""

    def __str__(self) -> str:
        return SampleError.__str__(self)
