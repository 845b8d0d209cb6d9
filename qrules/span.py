"""Source spans: where in which file a node or a diagnostic is."""

from __future__ import annotations

from typing import Optional

from pydantic import BaseModel, ConfigDict


class Span(BaseModel):
    """A half-open region of one source file; lines and columns count from 1."""

    # defer_build: building the schema costs more than a whole lint run; spans are
    # made by the parser with model_construct (validated under QRULES_VALIDATE_AST=1).
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    file: Optional[str] = None
    line: int
    col: int
    end_line: int
    end_col: int
    start: int = 0
    end: int = 0

    def __str__(self) -> str:
        return f"{self.file or '<string>'}:{self.line}:{self.col}"

    @classmethod
    def point(cls, file: Optional[str], line: int, col: int, offset: int = 0) -> "Span":
        return cls.model_construct(file=file, line=line, col=col, end_line=line,
                                   end_col=col + 1, start=offset, end=offset + 1)
