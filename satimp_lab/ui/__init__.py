"""The notebooks' user interface: interactive figures (``plots``), widgets and the playground
(``widgets``), the course's exercise checkers (``course``).
"""
