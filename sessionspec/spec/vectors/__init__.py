"""The language-neutral file vectors of SPEC.md §7: ``manifest.json`` and the files it names.

``python -m sessionspec.spec.vectors.generate`` rewrites them; ``sessionspec vectors export
DIR`` copies them out of an installed package for implementers in other languages.
"""
