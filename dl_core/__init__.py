"""dl_core: the course's PyTorch work as plain functions, no Streamlit.

Usable from a notebook, the command line (`python -m dl_core ...`) and the app's pages.
One module per idea: datasets, transforms, arithmetic, models, training, checkpoint,
predict, codegen, devices.
"""
from dl_core.errors import CourseError

__all__ = ["CourseError"]
