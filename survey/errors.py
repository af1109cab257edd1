"""Error types of the survey stage (codebook → import → store → score → estimate)."""
from sampling.errors import TpaError


class SurveyError(TpaError):
    code = "survey"


class CodebookError(SurveyError):
    code = "codebook"


class ImportFileError(SurveyError):
    """A file that cannot be imported at all (unreadable, wrong instrument, empty ...). The store is untouched."""
    code = "import"


class EstimationError(SurveyError):
    code = "estimation"


class ScoringError(SurveyError):
    code = "scoring"


class StoreError(SurveyError):
    """The questionnaire store cannot be used as it is (e.g. written by an older version)."""
    code = "store"
