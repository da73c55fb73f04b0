"""Models: everything that turns a ``--model`` into a frozen, loaded text-to-image backbone.

Modules: ``backbone`` (the :class:`Backbone` bundle and family detection), ``splice`` (placeholder
vectors spliced into a text encoder without touching its token table), ``load`` (the one place that
turns a model spec — ``toy``, a folder, a file, a hub id — into a backbone), ``single_file``
(A1111/LDM checkpoints with the shipped ``configs/``), ``listing`` (``ticraft models``).
"""
