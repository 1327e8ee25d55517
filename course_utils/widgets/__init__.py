"""Interactive widgets for the lessons (ipywidgets + matplotlib).

Each widget is a thin layer over pure functions that the tests call; ipywidgets is imported only
when a widget is built, so the rest of ``course_utils`` works without Jupyter.
"""
