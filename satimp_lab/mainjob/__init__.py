"""The main job: ``satimp-lab reproduce`` (every study's runs in one pass, then the notebooks side
by side, ``reproduce``) and the report it writes (``report``)."""
