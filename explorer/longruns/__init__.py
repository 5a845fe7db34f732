"""Long-run declarations: one module per experiment, each with `@artifacts.long_run(...)` on its trainer.

`python -m explorer models` lists them; `make models NAME=...` retrains one into models/NAME/.
See explorer.artifacts and Contributing → Conventions → Long runs.
"""
