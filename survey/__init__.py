"""Survey stage: codebook → import → store → score → estimate (SPEC §4, §6, §9)."""
from .errors import CodebookError, EstimationError, ImportFileError, ScoringError, SurveyError  # noqa: F401
