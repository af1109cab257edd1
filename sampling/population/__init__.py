"""A synthetic national population for testing and demonstrating the assessment (issue: "A synthetic national
population"): village frame, households and persons with register errors and the known truth."""
from .frame import FRAME_COLUMNS, village_frame

__all__ = ["FRAME_COLUMNS", "village_frame"]
from .households import (HOUSEHOLD_COLUMNS, PERSON_COLUMNS, county_households, household_truth,  # noqa: E402
                         village_households)

__all__ += ["HOUSEHOLD_COLUMNS", "PERSON_COLUMNS", "county_households", "household_truth", "village_households"]
from .generate import county_table, generate_population  # noqa: E402

__all__ += ["county_table", "generate_population"]
