"""The notebooks' user interface: interactive figures (``plots``), the weight curves' figures and
sliders (``widgets``), the playground (``playground``), and the course's exercise checkers
(``exercises``, ``example_answer``, ``multiple_choice``) with its reference solutions and progress
table (``course``).
"""
